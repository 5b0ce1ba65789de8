"""A lab server process: uvicorn, plus a watchdog that stops the server as soon as the lab is gone.

``python -m lab.serve UVICORN-ARGS``: runs uvicorn's own command line in this process, after starting a
thread that blocks on the lifeline (``lab.lifeline``) whose descriptor is in ``FAULTLAB_LIFELINE``. When
the lab ends, however it ends, the read returns end-of-file: the watchdog asks the server's whole process
group (uvicorn and its workers) to shut down, and kills what is left after a grace period.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from lab import wire

GRACE_S = 3.0


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 1):
            pass  # the lab never writes; anything read is ignored
    except OSError:
        pass
    os.killpg(os.getpgrp(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def main() -> None:
    lifeline = os.environ.get(wire.LIFELINE_ENV)
    if lifeline is not None:
        threading.Thread(target=_watch, args=(int(lifeline),), name="lab-lifeline", daemon=True).start()
    import uvicorn

    uvicorn.main(args=sys.argv[1:], prog_name="uvicorn")


if __name__ == "__main__":
    main()
