"""Fetching a model version from the cloud's TUF repository with python-tuf's ngclient.

:class:`TufFetcher` refreshes the signed metadata (root, timestamp, snapshot, targets)
from ``<cloud>/v1/tuf/metadata/`` starting from the root the unit trusts (installed at
provisioning; afterwards the newest root it verified, kept in its metadata folder),
looks up ``model-v<N>.tar`` and downloads it from ``/v1/tuf/targets/``: ngclient
streams it into a temporary file no longer than the signed length and checks its
hashes before handing it over; a body cut mid-way is resumed with an HTTP Range
request (:class:`~edge.ota.resume.ResumingFetcher`, up to ``max_resumes`` cuts).
python-tuf is imported on the first fetch, not with this module. Any refusal becomes
a :class:`FetchError` whose
``retry`` says whether trying again later could help (a cut or a stall) or not (a
tampered target, a wrong key, older or expired metadata, a version not published).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import EdgeError

if TYPE_CHECKING:
    from tuf.ngclient import FetcherInterface, Updater

    from edge.ota.resume import ResumingFetcher

log = logging.getLogger(__name__)

MAX_ARCHIVE_BYTES = 8 * 1024 * 1024  # a bundle is at most 5 MiB; its tar a little more
MAX_METADATA_BYTES = 512 * 1024


class FetchError(EdgeError, RuntimeError):
    """A model version that could not be fetched; ``retry`` when a later try may succeed."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def target_name(version: int) -> str:
    """The TUF target path of a model version (as the cloud's registry names it)."""
    return f"model-v{version}.tar"


def _reason(err: Exception) -> tuple[str, bool]:
    """A short reason for a refusal, and whether to retry."""
    from tuf.api import exceptions as tuf_errors

    kinds: list[tuple[type[Exception], str, bool]] = [
        (tuf_errors.ExpiredMetadataError, "metadata expired (frozen or stale mirror)", False),
        (tuf_errors.EqualVersionNumberError, "metadata replayed (same version)", False),
        (
            tuf_errors.BadVersionNumberError,
            "metadata older than expected (rollback, mix-and-match)",
            False,
        ),
        (tuf_errors.UnsignedMetadataError, "metadata not signed by a trusted key", False),
        (tuf_errors.LengthOrHashMismatchError, "target or metadata length/hash mismatch", False),
        (tuf_errors.DownloadLengthMismatchError, "download longer than its signed length", False),
        (tuf_errors.RepositoryError, "repository refused", False),
        (tuf_errors.SlowRetrievalError, "download stalled or cloud unreachable", True),
        (tuf_errors.DownloadHTTPError, "download failed (HTTP)", True),
        (tuf_errors.DownloadError, "download failed", True),
        (OSError, "download failed", True),
    ]
    for kind, what, retry in kinds:
        if isinstance(err, kind):
            cause = err if str(err) else (err.__cause__ or err.__context__ or err)
            detail = str(cause).splitlines()[0][:200] if str(cause) else type(err).__name__
            return f"{what}: {detail}", retry
    return f"{type(err).__name__}: {str(err)[:200]}", True


def _refused_whole(err: Exception) -> bool:
    """Whether ngclient refused the downloaded whole (length or hashes)."""
    from tuf.api import exceptions as tuf_errors

    return isinstance(
        err, (tuf_errors.LengthOrHashMismatchError, tuf_errors.DownloadLengthMismatchError)
    )


class Progress:
    """Bytes received of ``total``, told to ``tell`` as a share at each new tenth."""

    def __init__(self, total: int, tell: Callable[[float], None]) -> None:
        self.total = max(1, total)
        self.tell = tell
        self.received = 0
        self._tenths = 0

    def add(self, n: int) -> None:
        """``n`` more bytes arrived."""
        self.received += n
        tenths = min(10, self.received * 10 // self.total)
        if tenths > self._tenths:
            self._tenths = tenths
            self.tell(min(1.0, self.received / self.total))


class TufFetcher:
    """Downloads model archives from ``base_url``'s TUF repository, verified."""

    def __init__(
        self,
        base_url: str,
        metadata_dir: Path,
        *,
        trusted_root: bytes,
        timeout_s: int = 30,
        max_bytes: int = MAX_ARCHIVE_BYTES,
        fetcher: FetcherInterface | None = None,
        max_resumes: int = 10,
        max_bytes_per_s: float = 0,
    ) -> None:
        self.max_bytes_per_s = max_bytes_per_s
        self.base_url = base_url.rstrip("/")
        self.fetcher = fetcher
        self.metadata_dir = Path(metadata_dir)
        self.trusted_root = trusted_root
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_resumes = max_resumes

    @property
    def partial_dir(self) -> Path:
        """Where a target's bytes are kept while it downloads (across restarts)."""
        return self.metadata_dir.parent / "ota-partial"

    def _target_base(self) -> str:
        return f"{self.base_url}/v1/tuf/targets/"

    def _updater(self, target_dir: Path) -> Updater:
        # python-tuf and urllib3 are imported when a version is fetched, not at start:
        # a unit that is not updating does not hold them (about 5 MB)
        from tuf.ngclient import Updater, UpdaterConfig

        from edge.ota.resume import ResumingFetcher

        if self.fetcher is None:
            self.fetcher = ResumingFetcher(
                self.timeout_s,
                max_resumes=self.max_resumes,
                app_user_agent="shelfsense",
                partial_dir=self.partial_dir,
                keep_prefix=self._target_base(),
                max_bytes_per_s=self.max_bytes_per_s,
            )
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        cached = self.metadata_dir / "root.json"
        return Updater(
            metadata_dir=str(self.metadata_dir),
            metadata_base_url=f"{self.base_url}/v1/tuf/metadata/",
            target_dir=str(target_dir),
            target_base_url=self._target_base(),
            fetcher=self.fetcher,
            config=UpdaterConfig(
                root_max_length=MAX_METADATA_BYTES,
                timestamp_max_length=MAX_METADATA_BYTES,
                snapshot_max_length=MAX_METADATA_BYTES,
                targets_max_length=MAX_METADATA_BYTES,
            ),
            # the newest root verified so far; the provisioned one only the first time
            bootstrap=None if cached.is_file() else self.trusted_root,
        )

    def _resuming(self) -> ResumingFetcher | None:
        """The fetcher when it is the unit's own (it keeps partials, counts, paces)."""
        from edge.ota.resume import ResumingFetcher

        return self.fetcher if isinstance(self.fetcher, ResumingFetcher) else None

    def _reused(self) -> int:
        """Bytes the fetcher has taken from kept partial downloads so far."""
        resuming = self._resuming()
        return resuming.bytes_reused if resuming is not None else 0

    def _drop_partials(self) -> None:
        """Forget the kept partial download."""
        if (resuming := self._resuming()) is not None:
            resuming.drop_partials()

    def fetch(self, version: int, progress: Callable[[float], None] | None = None) -> bytes:
        """The verified archive of ``version``; raises :class:`FetchError`.

        ``progress`` is told the share of the archive received at each tenth of it.
        """
        name = target_name(version)
        reused_before = self._reused()
        with tempfile.TemporaryDirectory(prefix=".ota-", dir=self.metadata_dir.parent) as tmp:
            try:
                updater = self._updater(Path(tmp))
                updater.refresh()
                info = updater.get_targetinfo(name)
                if info is None:
                    raise FetchError(f"version {version} is not in the repository", retry=False)
                if info.length > self.max_bytes:
                    raise FetchError(
                        f"{name} is {info.length} bytes, more than {self.max_bytes}", retry=False
                    )
                counter = self._resuming()
                if progress is not None and counter is not None:
                    counter.on_chunk = Progress(info.length, progress).add
                try:
                    path = updater.download_target(info, filepath=str(Path(tmp) / "archive.tar"))
                finally:
                    if counter is not None:
                        counter.on_chunk = None
                data = Path(path).read_bytes()
            except FetchError:
                raise
            except Exception as err:
                reason, retry = _reason(err)
                if _refused_whole(err):
                    # what was kept did not make the signed file: it goes; when it came
                    # from before, the next try starts from the first byte and may pass
                    self._drop_partials()
                    if self._reused() > reused_before:
                        reason, retry = f"{reason} (kept partial download dropped)", True
                log.warning("model version %d not fetched: %s", version, reason)
                raise FetchError(reason, retry=retry) from None
        self._drop_partials()
        return data

    def forget(self) -> None:
        """Drop the cached metadata (the provisioned root is trusted again)."""
        shutil.rmtree(self.metadata_dir, ignore_errors=True)
