"""headpose: landmark-free head pose estimation (yaw, pitch, roll) with SSR-Net-MT.

Inference needs only NumPy, OpenCV and LiteRT; training and export need the ``[train]`` extra.
"""

__version__ = "0.1.0"

from headpose.errors import HeadposeError  # noqa: E402


def __getattr__(name):
    # Lazy so that `import headpose` stays light (no detector or model is loaded until asked for).
    if name in ("HeadPoseEstimator", "PoseResult", "FacePose"):
        import headpose.estimator

        return getattr(headpose.estimator, name)
    raise AttributeError(f"module 'headpose' has no attribute {name!r}")


__all__ = ["FacePose", "HeadPoseEstimator", "HeadposeError", "PoseResult", "__version__"]
