"""What a run leaves to read: report.md and report.html (``report``, ``html``, ``summary``, ``charts``,
``markdown``) and JUnit XML (``junit``)."""
