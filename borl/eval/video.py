"""Videos of episodes, rendered after the fact from their stored simulator states.

Every stored episode keeps the simulator state before each action, so any evaluation (of a low-dim
task too) can be watched later without running the policy again. Each video holds one frame per
step at the control rate (20 Hz), its border green for a success and red for a failure, and the last
frame held for half a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from borl.data.episode import Episode
from borl.errors import BorlError
from borl.files import atomic_path
from borl.logger import Logger

if TYPE_CHECKING:  # the simulators are the caller's: this module only asks one for frames
    from borl.envs.base import TaskEnv

FPS = 20
HOLD_FRAMES = FPS // 2
BORDER = 4
SUCCESS_RGB = (40, 180, 60)
FAILURE_RGB = (200, 40, 40)
# A multiple of 16, as H.264's macroblocks need.
DEFAULT_SIZE = 192


def episode_frames(env: TaskEnv, episode: Episode, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Frames (T, size, size, 3) uint8 of an episode's T stored states, with its outcome marked."""
    if episode.states is None or len(episode.states) == 0:
        raise BorlError(f"episode {episode.lineage.source} {episode.lineage.index} has no stored states")
    frames = np.stack([env.render_state(state, size) for state in episode.states])
    return mark_outcome(frames, episode.success)


def mark_outcome(frames: np.ndarray, success: bool) -> np.ndarray:
    """A copy of `frames` with a border in the outcome's colour and the last frame held."""
    marked = np.concatenate([frames, np.repeat(frames[-1:], HOLD_FRAMES, axis=0)])
    colour = np.array(SUCCESS_RGB if success else FAILURE_RGB, dtype=np.uint8)
    for edge in (np.s_[:, :BORDER], np.s_[:, -BORDER:], np.s_[:, :, :BORDER], np.s_[:, :, -BORDER:]):
        marked[edge] = colour
    return marked


def write_video(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    """Write frames (T, H, W, 3) uint8 as an H.264 MP4 (yuv420p, which every player reads) at `path`,
    atomically."""
    import av

    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def read_video(path: Path) -> np.ndarray:
    """The frames (T, H, W, 3) uint8 of a video file."""
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def video_name(episode: Episode) -> str:
    outcome = "success" if episode.success else "failure"
    return f"{episode.lineage.source}_{episode.lineage.index:05d}_{outcome}.mp4"


def write_episode_videos(
    env: TaskEnv,
    episodes: Sequence[Episode],
    directory: Path,
    logger: Logger | None = None,
    size: int = DEFAULT_SIZE,
) -> list[Path]:
    """One MP4 per episode in `directory` (named by source, index and outcome); returns the paths."""
    paths = []
    with (logger or Logger(progress=False)).bar(len(episodes), "videos", "video") as bar:
        for episode in episodes:
            path = directory / video_name(episode)
            write_video(path, episode_frames(env, episode, size))
            paths.append(path)
            bar.update()
    return paths
