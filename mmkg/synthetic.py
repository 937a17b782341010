"""Synthetic studies of any size in the codings-table format, for benchmarks and load tests."""
from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_codings(n_codings: int, *, n_codes: int = 120, n_participants: int = 200, seed: int = 0,
                      study_id: str = "synthetic", zipf_exponent: float = 1.1) -> pd.DataFrame:
    """A codings table with about `n_codings` rows: codes with Zipf-like frequencies, 1–4 codes per
    segment, one interview per participant, a single coder. Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_codes + 1) ** zipf_exponent
    weights /= weights.sum()
    # draw ~15% more than asked: a code drawn twice for one segment counts once
    per_segment = rng.integers(1, 5, size=max(1, int(n_codings * 1.15) // 2))
    segment_of_row = np.repeat(np.arange(len(per_segment)), per_segment)
    codes = rng.choice(n_codes, size=len(segment_of_row), p=weights)
    frame = pd.DataFrame({"segment": segment_of_row, "code": codes}).drop_duplicates().iloc[:n_codings]
    n_segments = int(frame["segment"].iloc[-1]) + 1
    participant = (frame["segment"].to_numpy() * n_participants) // n_segments
    segment_ids = pd.Series(frame["segment"].to_numpy()).map("g{:07d}".format)
    start = frame["segment"].to_numpy() * 100
    return pd.DataFrame({
        "study_id": study_id,
        "participant_id": pd.Series(participant).map("P{:04d}".format),
        "source_id": pd.Series(participant).map("P{:04d}-interview".format),
        "source_kind": "interview",
        "segment_id": segment_ids,
        "start": start,
        "end": start + 80,
        "code_id": pd.Series(frame["code"].to_numpy()).map("C{:03d}".format),
        "codebook": "interview",
        "coder": "coder1",
    })
