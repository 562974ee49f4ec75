"""A python-tuf fetcher that resumes a cut download with an HTTP Range request.

ngclient's :class:`~tuf.ngclient.FetcherInterface` asks a fetcher for one thing: an
iterator over a URL's bytes (``_fetch``); ngclient writes them to a temporary file,
stops at the signed length and checks the signed hashes at the end. So a fetcher
may stitch the bytes of several responses together without weakening any check:
when the connection drops in the middle of a body (urllib3 raises ``ProtocolError``
for a body shorter than its ``Content-Length``), :class:`ResumingFetcher` asks for
``Range: bytes=<received>-`` and goes on from the ``206`` answer. A server that
ignores the range (``200``) sends the whole file again; its first ``<received>``
bytes are dropped (restart semantics, still correct). After ``max_resumes`` cuts in
one download, or on a stall (socket timeout), the download fails as before and the
OTA client retries it later. With ``max_bytes_per_s`` the body is read no faster than
that (:class:`~edge.ota.pacing.Pacer`), so an update leaves the uplink to the events.

With ``partial_dir``, the bytes of a target (a URL under ``keep_prefix``) are also
appended to a file there as they arrive, so a download that failed, or an agent that
restarted or lost power in the middle, goes on from that file with a Range request
instead of the first byte. Only targets are kept, never metadata (which changes under
the same name); only the newest target's file is kept; ngclient still checks the
signed length and hashes of the whole, so a stale or torn file can only fail a
download (:class:`~edge.ota.fetch.TufFetcher` then drops it), never pass one.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import urllib3
from tuf.api import exceptions
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from edge.ota.pacing import Pacer

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024


class ResumingFetcher(Urllib3Fetcher):
    """:class:`Urllib3Fetcher` that resumes a body cut mid-way (Range), ``max_resumes`` times."""

    def __init__(
        self,
        socket_timeout: int = 30,
        *,
        max_resumes: int = 10,
        chunk_size: int = CHUNK_BYTES,
        app_user_agent: str | None = None,
        partial_dir: Path | None = None,
        keep_prefix: str = "",
        max_bytes_per_s: float = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pacer = Pacer(max_bytes_per_s) if max_bytes_per_s > 0 else None
        if self.pacer is not None:
            chunk_size = self.pacer.chunk(chunk_size)
        super().__init__(socket_timeout, chunk_size, app_user_agent)
        self.clock = clock
        self.sleep = sleep
        self.max_resumes = max_resumes
        self.user_agent = f"{app_user_agent or 'shelfsense'} (resuming)"
        self.partial_dir = partial_dir
        self.keep_prefix = keep_prefix
        self.bytes_received = 0  # every body byte read, resumed or dropped (for the bench)
        self.bytes_reused = 0  # bytes taken from a kept partial file instead of the network
        self.on_chunk: Callable[[int], None] | None = None  # told the size of each chunk
        self.resumes = 0

    def partial_path(self, url: str) -> Path | None:
        """Where the bytes of ``url`` are kept, or None when they are not."""
        if self.partial_dir is None or not url.startswith(self.keep_prefix):
            return None
        return self.partial_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.part"

    def drop_partials(self) -> None:
        """Forget every kept partial download."""
        if self.partial_dir is not None and self.partial_dir.is_dir():
            for old in self.partial_dir.glob("*.part"):
                old.unlink(missing_ok=True)

    def _request(self, url: str, offset: int) -> urllib3.BaseHTTPResponse:
        headers = {"User-Agent": self.user_agent}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = self._proxy_env.request(
                "GET",
                url,
                headers=headers,
                preload_content=False,
                timeout=urllib3.Timeout(self.socket_timeout),
            )
        except urllib3.exceptions.MaxRetryError as e:
            if isinstance(e.reason, urllib3.exceptions.TimeoutError):
                raise exceptions.SlowRetrievalError from e
            raise
        if response.status >= 400:
            response.close()
            raise exceptions.DownloadHTTPError(
                f"HTTP error occurred with status {response.status}", response.status
            )
        return response

    def _fetch(self, url: str) -> Iterator[bytes]:
        """The URL's bytes; a cut body is resumed from where it stopped."""
        part = self.partial_path(url)
        if part is None:
            chunks = self._stitched(url, self._request(url, 0))
        else:
            chunks = self._kept(url, part)
        return chunks if self.on_chunk is None else _counted(chunks, self.on_chunk)

    def _kept(self, url: str, part: Path) -> Iterator[bytes]:
        """The bytes kept in ``part`` first, then the rest from the network, appended to it."""
        assert self.partial_dir is not None
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        for old in self.partial_dir.glob("*.part"):
            if old != part:  # another version's download: not coming back
                old.unlink(missing_ok=True)
        have = part.stat().st_size if part.is_file() else 0
        if have:
            log.info("download of %s goes on from %d bytes kept from before", url, have)
            with part.open("rb") as kept:
                while chunk := kept.read(self.chunk_size):
                    self.bytes_reused += len(chunk)
                    yield chunk
        try:
            response = self._request(url, have)
        except exceptions.DownloadHTTPError as e:
            if have and e.status_code == 416:  # the kept file is all of it (or too long)
                return
            raise
        skip = have if have and response.status != 206 else 0
        with part.open("ab", buffering=0) as out:
            for chunk in self._stitched(url, response, got=have, skip=skip):
                out.write(chunk)
                yield chunk

    def _stitched(
        self, url: str, response: urllib3.BaseHTTPResponse, *, got: int = 0, skip: int = 0
    ) -> Iterator[bytes]:
        # got: bytes already handed over; skip: bytes to drop (a server that ignored
        # the range sent the whole file again)
        cuts = 0
        while True:
            try:
                while chunk := response.read1(self.chunk_size):  # what came, kept before a cut
                    self.bytes_received += len(chunk)
                    if self.pacer is not None and (
                        wait := self.pacer.wait_for(len(chunk), self.clock())
                    ):
                        self.sleep(wait)
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                        if not chunk:
                            continue
                    got += len(chunk)
                    yield chunk
                return
            except urllib3.exceptions.TimeoutError as e:
                raise exceptions.SlowRetrievalError from e
            except urllib3.exceptions.ProtocolError as e:
                cuts += 1
                if cuts > self.max_resumes:
                    raise exceptions.DownloadError(
                        f"{url}: cut {cuts} times, gave up after {got} bytes"
                    ) from e
                log.info("download of %s cut after %d bytes: resuming (%s)", url, got, e)
            finally:
                response.release_conn()
            self.resumes += 1
            response = self._request(url, got)
            if response.status != 206:  # the whole file again: drop what we have
                skip = got


def _counted(chunks: Iterator[bytes], tell: Callable[[int], None]) -> Iterator[bytes]:
    for chunk in chunks:
        tell(len(chunk))
        yield chunk
