from __future__ import annotations

import pytest

from campaigns.errors import InputError
from campaigns.rollout.changes import clean_settings


def test_report_segments_are_a_short_list_of_ids() -> None:
    assert clean_settings({"report_segments": [4, 2, 4]}) == {"report_segments": [2, 4]}
    for bad in ("3", [1.5], [True], list(range(11))):
        with pytest.raises(InputError) as caught:
            clean_settings({"report_segments": bad})
        assert caught.value.where == "report_segments"
