"""The camera stage of the edge agent: frames in, per-zone presence out, no pixels kept.

Workflow: a :class:`~edge.camera.source.FrameSource` chosen by ``camera.source``
from :data:`~edge.camera.registry.SOURCES` (``picamera2``, ``opencv``, ``sim``)
gives greyscale frames; the :class:`~edge.camera.presence.PresenceDetector`
turns each into per-zone occupancy and motion (background model in
:mod:`~edge.camera.background`, zones in :mod:`~edge.camera.zones`) and closes
:class:`models.types.Presence` episodes; the :class:`~edge.camera.worker.CameraWorker`
drives both, reconnecting a failing camera with backoff while
:class:`~edge.camera.health.CameraHealth` reports it. Frames are dropped as soon
as their features are taken.
"""
