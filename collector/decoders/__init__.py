"""Decoders by topic suffix.  Adding a payload format = one module + one line here."""

from __future__ import annotations

from collector.decoders.base import (
    Decoded,
    DecodeContext,
    Decoder,
    ItemReject,
    MeterValue,
    RawWeighing,
    Sample,
    SampleColumns,
)
from collector.decoders.cjt188 import Cjt188Decoder
from collector.decoders.dlt645 import Dlt645Decoder
from collector.decoders.reading_json import JsonReadingDecoder
from collector.decoders.weighing_json import JsonWeighingDecoder

DECODERS: dict[str, Decoder] = {
    d.suffix: d for d in (JsonReadingDecoder(), JsonWeighingDecoder(), Dlt645Decoder(), Cjt188Decoder())
}

__all__ = ["DECODERS", "DecodeContext", "Decoded", "Decoder", "ItemReject", "MeterValue", "RawWeighing", "Sample",
           "SampleColumns"]
