"""Input is bounded, over real HTTP: a large body is refused with 413 before it is read whole, and a 422
never echoes more than a short excerpt of what was sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from app.main import MAX_BODY_BYTES
from tests.servers import running_app


@pytest.fixture
def base(tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    with running_app(tmp_path, f"sqlite:///{tmp_path / 'todos.db'}") as (url, proc):
        yield url, psutil.Process(proc.pid)


def _post(url: str, content: bytes | Iterator[bytes]) -> httpx.Response:
    return httpx.post(f"{url}/todos", content=content, headers={"content-type": "application/json"}, timeout=30)


def test_a_body_over_the_limit_is_413_and_not_read_whole(base: tuple[str, psutil.Process]) -> None:
    url, server = base
    before = server.memory_info().rss
    response = _post(url, b'{"title": "' + b"x" * (20 * 1024 * 1024) + b'"}')
    assert response.status_code == 413, response.text[:200]
    assert len(response.content) < 100, response.content[:200]
    grew_mb = (server.memory_info().rss - before) / 2**20
    assert grew_mb < 15, f"the server grew {grew_mb:.0f} MB for a 20 MB body it refused"
    assert httpx.get(f"{url}/todos/count").json()["total"] == 0


def test_a_patch_body_over_the_limit_is_413_and_changes_nothing(base: tuple[str, psutil.Process]) -> None:
    """PATCH declares the limit on its own route, as POST does (the routes without a body do not pay for it)."""
    url, _ = base
    todo = httpx.post(f"{url}/todos", json={"title": "keep me"}).json()
    body = b'{"title": "' + b"x" * (2 * MAX_BODY_BYTES) + b'"}'
    response = httpx.patch(f"{url}/todos/{todo['id']}", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text[:200]
    assert httpx.get(f"{url}/todos/{todo['id']}").json()["title"] == "keep me"


def test_a_chunked_body_over_the_limit_is_413(base: tuple[str, psutil.Process]) -> None:
    url, _ = base
    chunks = iter([b'{"title": "', *[b"x" * 16384] * (MAX_BODY_BYTES // 16384 + 2), b'"}'])
    response = _post(url, chunks)  # no Content-Length: the limit counts what arrives
    assert response.status_code == 413, response.text[:200]


def test_a_body_at_the_limit_is_parsed_and_the_422_is_short(base: tuple[str, psutil.Process]) -> None:
    url, _ = base
    title = "x" * (MAX_BODY_BYTES - 20)
    response = _post(url, f'{{"title": "{title}"}}'.encode())
    assert response.status_code == 422, response.text[:200]
    assert len(response.content) < 1024, len(response.content)
    assert "string_too_long" in response.text and "characters)" in response.text


def test_a_lone_surrogate_in_a_title_is_a_422(base: tuple[str, psutil.Process]) -> None:
    url, _ = base
    response = _post(url, b'{"title": "\\ud800x"}')
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "title"]
