"""Drawing a sample in a terminal: a 2-D input as a small grayscale block picture, any
other input as numbers."""

from __future__ import annotations

import numpy as np

# From dark to light; each pixel is drawn two characters wide to look square.
_SHADES = " ░▒▓█"
MAX_PICTURE_SIDE = 64
MAX_NUMBERS = 64


def render_input(array: np.ndarray) -> str:
    """A picture when the input is 2-D once unit axes are dropped (and small enough),
    else its numbers."""
    squeezed = np.squeeze(array)
    if (
        squeezed.ndim == 2
        and squeezed.dtype.kind in "fiub"
        and max(squeezed.shape) <= MAX_PICTURE_SIDE
    ):
        return _picture(squeezed.astype(np.float64))
    return _numbers(array)


def render_prediction(
    probabilities: np.ndarray, class_labels: list[str], *, top: int = 3
) -> str:
    """The `top` classes by probability, one per line, with a bar."""
    order = np.argsort(probabilities)[::-1][:top]
    lines = []
    for index in order:
        name = class_labels[index] if index < len(class_labels) else str(index)
        share = float(probabilities[index])
        bar = "#" * round(share * 20)
        lines.append(f"  {index:>3} {name:<12} {share:6.3f} {bar}")
    return "\n".join(lines)


def render_scores(scores: dict[str, float]) -> str:
    return "  " + "  ".join(
        f"{name}={value:.4f}" for name, value in sorted(scores.items())
    )


def _picture(image: np.ndarray) -> str:
    low, high = float(image.min()), float(image.max())
    span = high - low
    levels = (
        np.zeros(image.shape, dtype=int)
        if span == 0
        else np.round((image - low) / span * (len(_SHADES) - 1)).astype(int)
    )
    border = "+" + "-" * (2 * image.shape[1]) + "+"
    rows = ["|" + "".join(_SHADES[v] * 2 for v in row) + "|" for row in levels]
    return "\n".join([border, *rows, border])


def _numbers(array: np.ndarray) -> str:
    flat = array.reshape(-1)
    shown = np.array2string(flat[:MAX_NUMBERS], precision=4, max_line_width=88)
    more = f" ... ({flat.size - MAX_NUMBERS} more)" if flat.size > MAX_NUMBERS else ""
    return f"shape {list(array.shape)}: {shown}{more}"
