"""The run's tokenizer: a pretrained one, or a byte-level BPE trained on the run's own data."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from mmfw.data.templates.base import IMAGE_PLACEHOLDER

SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


class TokenizerFactory:
    """Loads or trains the tokenizer and keeps it in ``<run dir>/tokenizer`` for reuse.

    Yaml keys:
      pretrained: local path or hub id (defaults to the LLM's ``pretrained``); null trains a
        byte-level BPE on the training data's text, so any text still encodes.
      vocab_size: target size of the locally trained vocabulary.
      min_frequency: minimum pair frequency for a BPE merge.
      image_token: the placeholder token for images (added if the tokenizer lacks it).
      trust_remote_code: allow a pretrained tokenizer's own code.
    """

    def __init__(
        self,
        *,
        pretrained: str | None = None,
        vocab_size: int = 1024,
        min_frequency: int = 2,
        image_token: str = IMAGE_PLACEHOLDER,
        trust_remote_code: bool = False,
    ) -> None:
        self.pretrained = pretrained
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.image_token = image_token
        self.trust_remote_code = trust_remote_code

    def load_or_build(
        self,
        save_dir: str | Path,
        texts: Callable[[], Iterable[str]],
        inherit_from: str | Path | None = None,
    ) -> PreTrainedTokenizerBase:
        """The tokenizer saved in ``save_dir`` if there is one; else a copy of
        ``inherit_from`` (another run's tokenizer folder) when given; else a new one."""
        from filelock import FileLock

        save_dir = Path(save_dir)
        save_dir.parent.mkdir(parents=True, exist_ok=True)
        # Every rank of a job builds its tokenizer here; the first builds, the others load.
        with FileLock(str(save_dir.parent / f".{save_dir.name}.lock")):
            if (save_dir / "tokenizer_config.json").exists():
                return load_tokenizer(save_dir)
            if inherit_from is not None:
                shutil.copytree(inherit_from, save_dir, dirs_exist_ok=True)
                return load_tokenizer(save_dir)
            tok = self._pretrained() if self.pretrained else self._train(texts())
            save_dir.mkdir(parents=True, exist_ok=True)
            tok.save_pretrained(save_dir)
            return tok

    def _pretrained(self) -> PreTrainedTokenizerBase:
        tok = AutoTokenizer.from_pretrained(
            self.pretrained, trust_remote_code=self.trust_remote_code
        )
        if self.image_token not in tok.get_vocab():
            tok.add_special_tokens({"additional_special_tokens": [self.image_token]})
        if tok.pad_token is None:
            # LLaVA's choice for Llama tokenizers, which have no pad token.
            tok.pad_token = tok.unk_token or tok.eos_token
        return tok

    def _train(self, texts: Iterable[str]) -> PreTrainedTokenizerBase:
        specials = [*SPECIALS.values(), self.image_token]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer)
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, extra_special_tokens=[self.image_token], **SPECIALS
        )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """A tokenizer saved by :class:`TokenizerFactory` (never runs remote code)."""
    return AutoTokenizer.from_pretrained(str(path))
