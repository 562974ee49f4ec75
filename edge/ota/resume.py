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
OTA client retries it later from the start.

The partial bytes live in ngclient's temporary file for the one download; a restart
of the agent starts the download again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import urllib3
from tuf.api import exceptions
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

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
    ) -> None:
        super().__init__(socket_timeout, chunk_size, app_user_agent)
        self.max_resumes = max_resumes
        self.user_agent = f"{app_user_agent or 'shelfsense'} (resuming)"
        self.bytes_received = 0  # every body byte read, resumed or dropped (for the bench)
        self.resumes = 0

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
        return self._stitched(url, self._request(url, 0))

    def _stitched(self, url: str, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        got = 0
        cuts = 0
        skip = 0  # bytes to drop: a server that ignored the range sent it all again
        while True:
            try:
                while chunk := response.read1(self.chunk_size):  # what came, kept before a cut
                    self.bytes_received += len(chunk)
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
