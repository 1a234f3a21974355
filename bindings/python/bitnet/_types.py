"""Type aliases of the public API."""
from typing import Mapping, Sequence, Union

Prompt = Union[str, bytes, Sequence[int], None]  # text (tokenized) or token ids; None: continue
Message = Mapping[str, str]                      # {"role": ..., "content": ...}
Stop = Union[str, Sequence[str], None]           # stop string(s)
