"""What a panel shows of an array: 2-D maps per channel, or one matrix."""

from __future__ import annotations

from typing import Any


def feature_view(array, layout: str | None, channel_axis: int | None, *,
                 max_rows: int = 64):
    """Reduce an array to the 2-D maps a panel shows.

    Parameters
    ----------
    array : numpy.ndarray
        Any layout.
    layout : str, optional
        Its layout letters (``NCHW``...); without it the last two non-channel axes are the
        spatial ones and the first other axis the batch.
    channel_axis : int, optional
        The channel axis, or None.
    max_rows : int
        Samples shown by the matrix of a layout without spatial axes (NC).

    Returns
    -------
    (maps, per_channel, where)
        ``maps`` is ``(P, H, W)``: one map per channel of the first sample (``per_channel``
        True) when there are two spatial axes, else a single matrix, channels down the rows
        against positions (NCL), or samples down the rows against channels (NC).  ``where``
        says which part was taken (``"N=0"``, ``"D=3 (middle)"``...).
    """
    import numpy as np

    a = np.asarray(array)
    nd = a.ndim
    ch = None if channel_axis is None else channel_axis % nd
    others = [i for i in range(nd) if i != ch]
    if layout is not None and len(layout) == nd:
        batch = [i for i in others if layout[i] == "N"]
        spatial = [i for i in others if layout[i] != "N"]
        names = layout
    else:
        batch = [others[0]] if len(others) > 2 else []
        spatial = [i for i in others if i not in batch]
        names = "".join("N" if i in batch else "C" if i == ch else "S" for i in range(nd))
    index: list[Any] = [slice(None)] * nd
    where = []
    if len(spatial) >= 2:
        for i in batch:
            index[i] = 0
            where.append(f"{names[i]}=0")
        for i in spatial[:-2]:
            index[i] = a.shape[i] // 2
            where.append(f"{names[i]}={a.shape[i] // 2} (middle)")
        sub = a[tuple(index)]
        kept = [i for i in range(nd) if isinstance(index[i], slice)]
        maps = sub[None] if ch is None else np.moveaxis(sub, kept.index(ch), 0)
        return maps, ch is not None, ", ".join(where)
    if len(spatial) == 1:
        for i in batch:
            index[i] = 0
            where.append(f"{names[i]}=0")
        sub = a[tuple(index)]
        kept = [i for i in range(nd) if isinstance(index[i], slice)]
        matrix = sub[None] if ch is None else np.moveaxis(sub, kept.index(ch), 0)
        where.append("channels (rows) x positions (columns)")
        return matrix[None], False, ", ".join(where)
    for i in batch:
        index[i] = slice(0, max_rows)
        if a.shape[i] > max_rows:
            where.append(f"{names[i]}=0..{max_rows - 1}")
    sub = a[tuple(index)]
    if sub.ndim == 1:
        matrix = sub[None]
    else:
        kept = [i for i in range(nd) if isinstance(index[i], slice)]
        matrix = np.moveaxis(sub, kept.index(ch), -1) if ch is not None else sub
    where.append("samples (rows) x channels (columns)" if matrix.shape[0] > 1 else
                 "channels (columns)")
    return matrix[None], False, ", ".join(where)


