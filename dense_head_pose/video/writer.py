"""Writing drawn frames as a video that plays, and that is whole or reported as broken.

Browsers play H.264 in MP4, not OpenCV's default ``mp4v`` (MPEG-4 Part 2), so the writer
prefers, in order:

1. **ffmpeg with libx264** (H.264, ``yuv420p``, ``+faststart``): the ``ffmpeg`` on ``PATH``
   (Debian/Ubuntu ``apt install ffmpeg``) or the one bundled by ``pip install
   imageio-ffmpeg`` (the ``video`` extra), fed raw frames through a pipe;
2. **OpenCV's ``avc1``** (H.264), which OpenCV builds linked against a system FFmpeg with
   x264 have (Ubuntu's ``python3-opencv``, hence ROS installs);
3. OpenCV's ``mp4v`` (plays in VLC/ffplay, not in browsers), with one line saying how to get
   H.264.

A video file is only complete once it is closed (MP4 writes its index last), and neither
encoder says when a write failed (a full disk): :meth:`VideoWriter.close` therefore checks
the result, ffmpeg's exit status or the file read back, and raises :class:`VideoError` if the
video is not whole. The CLI turns SIGTERM and SIGHUP into an orderly stop, so ``timeout``,
systemd or a closed terminal still leave a playable file (ffmpeg, in its own session, also
finishes the file if this process is killed outright: its input just ends).

Frames of another size than the first (a folder of mixed images) are letterboxed into the
first frame's size rather than dropped: a video has one size.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ..errors import VideoError
from ..lifetime import stop_signals_held
from ..runtime import native_stderr_captured

LOG = logging.getLogger("dense_head_pose")
H264_HINT = ("for H.264 (plays in browsers), install ffmpeg (apt install ffmpeg) or "
             "pip install imageio-ffmpeg")


def find_ffmpeg() -> str | None:
    """An ffmpeg executable: ``$DENSE_HEAD_POSE_FFMPEG`` (empty: none), ``PATH``, then
    imageio-ffmpeg's bundled binary."""
    configured = os.environ.get("DENSE_HEAD_POSE_FFMPEG")
    if configured is not None:
        return configured or None
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found]

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return None


def letterbox(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` scaled to fit ``size`` (width, height), centred on black."""
    width, height = size
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA)
    out = np.zeros((height, width, 3), np.uint8)
    x, y = (width - new_w) // 2, (height - new_h) // 2
    out[y:y + new_h, x:x + new_w] = resized
    return out


class VideoWriter:
    """An H.264 (else mp4v) video file; :meth:`write` frames, :meth:`close` to finish and
    verify. The size is the first frame's; later frames of another size are letterboxed."""

    def __init__(self, path: str | os.PathLike[str], fps: float,
                 ffmpeg: str | None = None) -> None:
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 25.0
        self.size: tuple[int, int] | None = None
        self.codec = ""
        self.frames = 0
        self.letterboxed = 0
        self._ffmpeg = find_ffmpeg() if ffmpeg is None else (ffmpeg or None)
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._cv: cv2.VideoWriter | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VideoError(f"cannot create the folder of {self.path}: "
                             f"{exc.strerror or exc}") from exc
        if self.path.is_dir():
            raise VideoError(f"{self.path} is a directory: give the video file to write")

    def write(self, frame: np.ndarray) -> None:
        """Append a BGR uint8 frame."""
        if self.size is None:
            self.size = (int(frame.shape[1]), int(frame.shape[0]))
            self._open()
        elif (frame.shape[1], frame.shape[0]) != self.size:
            if not self.letterboxed:
                LOG.warning("%s: frames of another size than the first (%dx%d) are "
                            "letterboxed into it", self.path, *self.size)
            self.letterboxed += 1
            frame = letterbox(frame, self.size)
        with stop_signals_held():  # a stop never leaves half a frame in the file
            if self._process is not None:
                assert self._process.stdin is not None
                try:
                    self._process.stdin.write(np.ascontiguousarray(frame).tobytes())
                except OSError as exc:  # BrokenPipeError: ffmpeg stopped (a full disk)
                    status = self._process.wait()
                    self._process = None
                    reason = self._ffmpeg_error() or (
                        f"killed by {signal.Signals(-status).name}" if status < 0 else exc)
                    raise VideoError(f"cannot write video {self.path}: ffmpeg stopped "
                                     f"({reason})") from exc
            else:
                assert self._cv is not None
                self._cv.write(frame)
            self.frames += 1

    def _open(self) -> None:
        assert self.size is not None
        if self._ffmpeg and self._start_ffmpeg():
            self.codec = "h264 (ffmpeg)"
            return
        for fourcc, codec in (("avc1", "h264 (OpenCV)"), ("mp4v", "mp4v")):
            # OpenCV and FFmpeg print their failed attempts (no H.264 encoder in PyPI's
            # OpenCV) straight to stderr: keep them out of the user's terminal
            with native_stderr_captured():
                writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc),
                                         self.fps, self.size)
            if writer.isOpened():
                self._cv, self.codec = writer, codec
                if fourcc == "mp4v":
                    LOG.info("writing %s as mp4v: %s", self.path, H264_HINT)
                return
            writer.release()
        raise VideoError(f"cannot write video {self.path} (no MP4 encoder in this OpenCV "
                         f"build; {H264_HINT})")

    def _start_ffmpeg(self) -> bool:
        assert self.size is not None and self._ffmpeg is not None
        width, height = self.size
        # ffmpeg's messages go to a temporary file elsewhere: the output's disk may be full
        self._stderr = tempfile.TemporaryFile(prefix="dense_head_pose_ffmpeg_")  # noqa: SIM115
        command = [self._ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
                   "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
                   "-r", f"{self.fps:.6g}", "-i", "pipe:0",
                   # yuv420p needs even sides
                   "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                   "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                   "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4",
                   str(self.path)]
        try:
            # its own session: a terminal's signals reach this process, which then closes
            # the pipe so ffmpeg finishes the file
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, stderr=self._stderr,
                                             start_new_session=True)
        except OSError as exc:
            LOG.info("ffmpeg %s cannot run (%s); using OpenCV", self._ffmpeg, exc)
            self._stderr.close()
            self._stderr = None
            return False
        return True

    def _ffmpeg_error(self) -> str:
        """ffmpeg's last message line."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def close(self) -> None:
        """Finish the file and check it: :class:`VideoError` if it is not whole."""
        if self._process is not None:
            process, self._process = self._process, None
            assert process.stdin is not None
            with contextlib.suppress(OSError):  # reported through the exit status
                process.stdin.close()
            status = process.wait()
            detail = self._ffmpeg_error()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None
            if status != 0:
                reason = detail or (f"killed by {signal.Signals(-status).name}" if status < 0
                                    else f"exit status {status}")
                raise VideoError(f"video {self.path} is incomplete: ffmpeg failed ({reason})")
        elif self._cv is not None:
            self._cv.release()
            self._cv = None
            self._verify()

    def _verify(self) -> None:
        """OpenCV does not report failed writes: read the container back."""
        capture = cv2.VideoCapture(str(self.path))
        try:
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        finally:
            capture.release()
        if count < self.frames:
            raise VideoError(f"video {self.path} is incomplete: {count} of {self.frames} "
                             "frames readable (disk full?)")

    def abort(self) -> None:
        """Stop without raising (an error elsewhere): finish what was written."""
        try:
            self.close()
        except VideoError as exc:  # the error that stopped us is the one to report
            LOG.debug("%s", exc)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.abort()
