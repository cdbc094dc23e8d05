"""Dataset lookup, readers and seeded sampling, on small files in the shared formats and on the real data."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pandas as pd
import pytest
from tokenizers.processors import TemplateProcessing

from layerwise.resources.byte_tokenizer import make_byte_tokenizer
from layerwise.resources.datasets import (DEFAULT_DATASETS, DatasetNotFound, DatasetSpecError, check_hub_cache, hub_files,
                                          load_dataset_table,
                                          parse_spec, read_ag_news_csv, read_jsonl, read_text, sample_inputs, special_affixes)

from tests.helpers.hub_cache import cache_snapshot


def gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character map (the ByteLevel alphabet), written out as published."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def ids_to_bytes(tokenizer, ids: list[int]) -> bytes:
    """Byte-tokenizer ids → the raw bytes they stand for (independent of the tokenizer's decoder)."""
    char_to_byte = {c: b for b, c in gpt2_bytes_to_unicode().items()}
    return bytes(char_to_byte[t] for t in tokenizer.convert_ids_to_tokens(ids))


@pytest.fixture(scope="module")
def byte_tok():
    return make_byte_tokenizer()


@pytest.fixture(scope="module")
def wrapping_tok():
    """A byte tokenizer that adds `<bos> … <eos>` like BERT adds [CLS] … [SEP]."""
    tok = make_byte_tokenizer()
    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", tok.bos_token_id), ("<eos>", tok.eos_token_id)])
    return tok


def table(texts: list) -> pd.DataFrame:
    return pd.DataFrame({"text_id": np.arange(len(texts)), "text": texts, "label": 0})


def word_texts(n: int) -> list[str]:
    """Distinct texts of varied byte lengths 3 … 3+n-1."""
    return [f"t{i:02d}" + "x" * i for i in range(n)]


# --------------------------------------------------------------------------- sampling


def test_same_seed_same_sample_and_another_seed_another(byte_tok):
    docs = table(word_texts(60))
    a = sample_inputs(docs, "documents", byte_tok, n=10, max_tokens=16, seed=3)
    b = sample_inputs(docs, "documents", byte_tok, n=10, max_tokens=16, seed=3)
    c = sample_inputs(docs, "documents", byte_tok, n=10, max_tokens=16, seed=4)
    assert a.text_ids == b.text_ids and a.input_ids == b.input_ids
    assert len(set(a.text_ids)) == 10
    assert set(a.text_ids) != set(c.text_ids)


def test_truncation_to_l_tokens_and_shorter_texts_recorded(byte_tok):
    texts = word_texts(30)
    sample = sample_inputs(table(texts), "documents", byte_tok, n=30, max_tokens=12, seed=0)
    for ids, text_id in zip(sample.input_ids, sample.text_ids):
        raw = texts[text_id].encode()
        assert ids_to_bytes(byte_tok, ids) == raw[:12]  # one byte per token, cut after L
    expected_short = sum(len(t.encode()) < 12 for t in texts)
    assert sample.report["shorter_than_max_tokens"] == expected_short == 9
    assert sample.report["n_tokens"] == sum(min(len(t.encode()), 12) for t in texts)


def test_truncation_counts_special_tokens(wrapping_tok):
    texts = word_texts(20)
    sample = sample_inputs(table(texts), "documents", wrapping_tok, n=20, max_tokens=10, seed=0)
    for ids, text_id in zip(sample.input_ids, sample.text_ids):
        n_bytes = len(texts[text_id].encode())
        assert len(ids) == min(n_bytes + 2, 10)
        assert ids[0] == wrapping_tok.bos_token_id and ids[-1] == wrapping_tok.eos_token_id
        assert ids_to_bytes(wrapping_tok, ids[1:-1]) == texts[text_id].encode()[:8]


def test_empty_whitespace_and_too_short_texts_are_dropped_and_counted(byte_tok, caplog):
    texts = ["", "  \n\t ", None, "a", "ok text", "another one", "third text"]
    # Asking for one more than the usable texts forces a visit of every row, so every drop is counted.
    with pytest.raises(ValueError, match=r"only 3 usable texts \(asked for 4\); 3 empty and 1 shorter than 2"):
        sample_inputs(table(texts), "documents", byte_tok, n=4, max_tokens=8, seed=1, min_tokens=2)
    sample = sample_inputs(table(texts), "documents", byte_tok, n=3, max_tokens=8, seed=1, min_tokens=2)
    assert sorted(sample.text_ids) == [4, 5, 6]
    dropped = sample.report["dropped_empty"], sample.report["dropped_too_short"]
    assert f"dropped {dropped[0]} empty and {dropped[1]} too-short" in caplog.text or dropped == (0, 0)


@pytest.mark.parametrize("n", [0, -3])
def test_non_positive_n_is_rejected(byte_tok, n):
    with pytest.raises(ValueError, match="n_texts must be positive"):
        sample_inputs(table(word_texts(5)), "documents", byte_tok, n=n, max_tokens=8, seed=0)


def test_l_beyond_the_model_context_is_rejected(tiny_model):
    tok = tiny_model("gpt2").tokenizer  # the random GPT-2 has 512 positions
    docs = table(word_texts(5))
    assert len(sample_inputs(docs, "documents", tok, n=2, max_tokens=512, seed=0).input_ids) == 2
    with pytest.raises(ValueError, match="exceeds the model's context of 512"):
        sample_inputs(docs, "documents", tok, n=2, max_tokens=513, seed=0)


# --------------------------------------------------------------------------- streams


def test_stream_chunks_are_contiguous_non_overlapping_and_exactly_l(byte_tok, wrapping_tok):
    text = "".join(f"<p id={i}>naïve café {i * 7919 % 1000}</p>\n" for i in range(40))
    for tok, (prefix, suffix) in [(byte_tok, ([], [])),
                                  (wrapping_tok, ([wrapping_tok.bos_token_id], [wrapping_tok.eos_token_id]))]:
        assert special_affixes(tok) == (prefix, suffix)
        body = 16 - len(prefix) - len(suffix)
        n_all = len(text.encode()) // body
        sample = sample_inputs(table([text]), "stream", tok, n=n_all, max_tokens=16, seed=0)
        assert sample.text_ids == list(range(n_all))  # every chunk, in stream order
        assert all(len(ids) == 16 for ids in sample.input_ids)
        assert all(ids[:len(prefix)] == prefix and ids[len(ids) - len(suffix):] == suffix for ids in sample.input_ids)
        bodies = [ids[len(prefix):len(ids) - len(suffix)] for ids in sample.input_ids]
        # Re-tokenising the stream gives back the chunks glued together: nothing skipped, nothing repeated.
        glued = [t for b in bodies for t in b]
        assert glued == tok(text, add_special_tokens=False)["input_ids"][:n_all * body]
        assert ids_to_bytes(tok, glued) == text.encode()[:n_all * body]


def test_a_stream_longer_than_the_context_samples_without_the_tokenizers_warning(caplog):
    """The whole stream is tokenised at once, then cut into chunks of L: transformers' "sequence length is longer
    than the specified maximum ... indexing errors" warning is known to be harmless there and is not printed."""
    tok = make_byte_tokenizer()
    tok.model_max_length = 32
    tok.deprecation_warnings.pop("sequence-length-is-longer-than-the-specified-maximum", None)
    sample = sample_inputs(table(["abcdefghij" * 50]), "stream", tok, n=3, max_tokens=16, seed=0)
    assert len(sample.input_ids) == 3 and sample.report["stream_tokens"] == 500
    assert "longer than the specified maximum" not in caplog.text
    tok("abcdefghij" * 50)  # the same call with the default verbosity does warn: the check can fail
    assert "longer than the specified maximum" in caplog.text


def test_stream_sampling_is_seeded(byte_tok):
    docs = table(["abcdefghij" * 50])
    a = sample_inputs(docs, "stream", byte_tok, n=5, max_tokens=10, seed=0)
    b = sample_inputs(docs, "stream", byte_tok, n=5, max_tokens=10, seed=0)
    c = sample_inputs(docs, "stream", byte_tok, n=5, max_tokens=10, seed=1)
    assert a.text_ids == b.text_ids != c.text_ids
    assert a.text_ids == sorted(set(a.text_ids))


def test_stream_too_short_for_n_chunks(byte_tok):
    with pytest.raises(ValueError, match="3 chunks of 10; asked for 4"):
        sample_inputs(table(["x" * 35]), "stream", byte_tok, n=4, max_tokens=10, seed=0)


def test_real_enwik8_chunks_are_aligned_with_the_raw_bytes(byte_tok, shared_data):
    df, provenance = load_dataset_table("enwik8", [shared_data], allow_hub=False)
    raw = (shared_data / "enwik8_small.xml").read_bytes()
    assert provenance["undecodable"] == 0 and len(raw) == 1_071_051  # the size the README states
    sample = sample_inputs(df, "stream", byte_tok, n=8, max_tokens=32, seed=0)
    assert sample.report["n_chunks_available"] == len(raw) // 32
    for ids, chunk in zip(sample.input_ids, sample.text_ids):
        assert len(ids) == 32
        assert ids_to_bytes(byte_tok, ids) == raw[chunk * 32:(chunk + 1) * 32]


# --------------------------------------------------------------------------- files and lookup


def imdb_line(i: int, text: str, label: int) -> bytes:
    return json.dumps({"id": f"test_{i}", "text": text, "label": label, "rating": 8 if label else 2}).encode()


def test_invalid_utf8_lines_are_counted_not_fatal(tmp_path):
    lines = [imdb_line(0, "good film", 1), b'{"id": "x", "text": "caf\xe9 latin-1", "label": 0, "rating": 1}',
             imdb_line(2, "bad film", 0), b""]
    path = tmp_path / "imdb_test.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    df, bad = read_jsonl(path)
    assert bad == 1
    assert df["text"].tolist() == ["good film", "bad film"] and df["label"].tolist() == [1, 0]

    table_, provenance = load_dataset_table("imdb", [tmp_path], allow_hub=False)
    assert provenance["undecodable"] == 1 and provenance["n_rows"] == 2
    assert table_["text_id"].tolist() == [0, 1]


def test_ag_news_reader_joins_title_and_description_and_skips_bad_bytes(tmp_path):
    path = tmp_path / "ag_news_test.csv"
    path.write_bytes(b'"3","Title one","A first\\line of text"\n'
                     b'"1","Caf\xe9","not utf-8"\n'
                     b'"4","Title two","He said ""hi"""\n')  # quotes doubled, as in the release
    df, bad = read_ag_news_csv(path)
    assert bad == 1
    assert df["text"].tolist() == ["Title one A first line of text", 'Title two He said "hi"']
    assert df["label"].tolist() == [2, 3]  # classes 1-4 become 0-3


def test_enwik8_reader_replaces_and_counts_bad_bytes(tmp_path):
    path = tmp_path / "enwik8"
    path.write_bytes(b"<page>ok\xff\xfe</page>")
    df, bad = read_text(path)
    assert bad == 2 and df["text"].tolist() == ["<page>ok\ufffd\ufffd</page>"]


def test_missing_dataset_names_every_place_looked_without_hub(tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(DatasetNotFound) as err:
        load_dataset_table("imdb", folders, allow_hub=False)
    message = str(err.value)
    for folder in folders:
        for name in ("imdb_test.jsonl.gz", "imdb_test.jsonl"):
            assert str(folder.resolve() / name) in message
    assert "hub disabled" in message




def test_missing_dataset_with_unreachable_hub(tmp_path, offline_hf_home):
    with pytest.raises(DatasetNotFound) as err:
        load_dataset_table("ag_news", [tmp_path / "nowhere"], allow_hub=True)
    message = str(err.value)
    assert str((tmp_path / "nowhere").resolve() / "ag_news_test.csv") in message
    # The config key, the repository and revision, and both ways out.
    for part in ("config 'datasets.ag_news'", "'fancyzhx/ag_news' revision 'main'", "source: local",
                 "hf download fancyzhx/ag_news --repo-type dataset --revision main"):
        assert part in message


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(KeyError, match="unknown dataset 'wikitext'.*ag_news.*enwik8.*imdb"):
        load_dataset_table("wikitext", [tmp_path], allow_hub=False)


def test_search_path_order_first_folder_wins(tmp_path):
    for folder, text in [("first", "from first"), ("second", "from second")]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "imdb_test.jsonl").write_bytes(imdb_line(0, text, 1))
    df, provenance = load_dataset_table("imdb", [tmp_path / "missing", tmp_path / "first", tmp_path / "second"],
                                        allow_hub=False)
    assert df["text"].tolist() == ["from first"]
    assert provenance["path"] == str((tmp_path / "first" / "imdb_test.jsonl").resolve())


# --------------------------------------------------------------------------- the real shared files


def test_real_imdb_matches_the_readme(shared_data):
    df, provenance = load_dataset_table("imdb", [shared_data], allow_hub=False)
    assert provenance["origin"] == "local" and provenance["undecodable"] == 0
    assert len(df) == 25_000
    assert df["label"].value_counts().to_dict() == {0: 12_500, 1: 12_500}
    assert df["text_id"].tolist() == list(range(25_000))


def test_real_ag_news_matches_the_readme(shared_data):
    df, provenance = load_dataset_table("ag_news", [shared_data], allow_hub=False)
    assert provenance["undecodable"] == 0
    assert len(df) == 7_600
    assert df["label"].value_counts().to_dict() == {0: 1_900, 1: 1_900, 2: 1_900, 3: 1_900}
    assert df["text"].str.len().min() > 0 and not df["text"].str.contains("\\", regex=False).any()


# --------------------------------------------------------------------------- the registry


def test_a_corpus_of_ones_own_is_a_config_edit(tmp_path):
    """A user's corpus: a folder of gzipped JSON lines with its own column names, string labels."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [{"body": f"text number {i}", "topic": ["sport", "art"][i % 2]} for i in range(5)]
    (corpus / "b.jsonl.gz").write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows[3:]).encode()))
    (corpus / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:3]))
    registry = {"mine": {"source": "local", "path": "corpus", "text_column": "body", "label_column": "topic",
                         "layout": "documents"}}
    df, provenance = load_dataset_table("mine", [tmp_path / "elsewhere", tmp_path], allow_hub=False, registry=registry)
    assert df["text"].tolist() == [r["body"] for r in rows]  # files in name order, rows in file order
    assert df["label"].tolist() == [1, 0, 1, 0, 1]  # sorted class names: art = 0, sport = 1
    assert provenance["origin"] == "local" and provenance["path"] == str(corpus.resolve())


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".txt"])
def test_every_local_format_reads_the_same_texts(tmp_path, suffix):
    texts = ["alpha beta", "gamma, delta", "epsilon"]
    path = tmp_path / f"corpus{suffix}"
    if suffix == ".csv":
        pd.DataFrame({"text": texts}).to_csv(path, index=False)
    elif suffix == ".parquet":
        pd.DataFrame({"text": texts}).to_parquet(path)
    else:  # a text file is one text: a stream
        path.write_text("\n".join(texts))
    layout = "stream" if suffix == ".txt" else "documents"
    registry = {"mine": {"source": "local", "path": str(path), "layout": layout}}
    df, _ = load_dataset_table("mine", [], allow_hub=False, registry=registry)
    assert df["text"].tolist() == (["\n".join(texts)] if layout == "stream" else texts)
    assert (df["label"] == -1).all()


def test_a_stream_of_many_rows_is_one_text(tmp_path):
    path = tmp_path / "lines.csv"
    pd.DataFrame({"line": ["one", "two", "three"]}).to_csv(path, index=False)
    registry = {"s": {"source": "local", "path": str(path), "text_column": "line", "layout": "stream"}}
    df, provenance = load_dataset_table("s", [], allow_hub=False, registry=registry)
    assert df["text"].tolist() == ["one\ntwo\nthree"] and provenance["layout"] == "stream"


@pytest.mark.parametrize("entry, message", [
    ({"source": "ftp"}, r"'datasets.bad.source' must be one of"),
    ({"source": "local"}, r"'datasets.bad' \(local\): missing field 'path'"),
    ({"source": "hf"}, r"'datasets.bad' \(hf\): missing field 'id'"),
    ({"source": "local", "path": "x", "layout": "chunks"}, r"'datasets.bad.layout' must be one of"),
    ({"source": "local", "path": "x", "format": "xlsx"}, r"'datasets.bad.format' must be one of"),
])
def test_malformed_entries_name_the_key(entry, message):
    with pytest.raises(DatasetSpecError, match=message):
        parse_spec("bad", entry)


def test_a_missing_column_names_the_key_and_the_columns(tmp_path):
    (tmp_path / "c.csv").write_text("body\nhello\n")
    with pytest.raises(DatasetSpecError, match=r"'datasets.c'.*\['text'\].*columns: \['body'\]"):
        load_dataset_table("c", [tmp_path], allow_hub=False, registry={"c": {"source": "local", "path": "c.csv"}})


def test_builtin_entries_parse():
    assert {parse_spec(k, v).layout for k, v in DEFAULT_DATASETS.items()} == {"documents", "stream"}


def test_hub_split_selection_follows_the_common_layouts(tmp_path):
    from layerwise.resources.datasets import HubDataset

    for rel in ["plain_text/test-00000-of-00001.parquet", "plain_text/train-00000-of-00001.parquet",
                "unsupervised/test-00000-of-00001.parquet", "data/test-00000-of-00002.parquet",
                "enwik8/train/0000.parquet", "README.md"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    rel = lambda hub: [p.relative_to(tmp_path).as_posix() for p in hub_files(tmp_path, hub)]  # noqa: E731
    assert rel(HubDataset("x", config="plain_text", split="test")) == ["plain_text/test-00000-of-00001.parquet"]
    assert rel(HubDataset("x", files="data/test-*.parquet")) == ["data/test-00000-of-00002.parquet"]
    assert rel(HubDataset("x", config="enwik8", split="train")) == ["enwik8/train/0000.parquet"]


def test_hub_dataset_loads_offline_from_the_cache_at_its_revision(offline_hf_home):
    """Two revisions of one dataset in the cache: the entry's revision is the one read, and its commit is
    recorded, with HF_HUB_OFFLINE set (nothing may call the hub)."""
    def parquet(texts):
        buf = io.BytesIO()
        pd.DataFrame({"text": texts, "label": list(range(len(texts)))}).to_parquet(buf)
        return buf.getvalue()

    cache_snapshot(offline_hf_home, "org/reviews", "main", {"plain_text/test-0.parquet": parquet(["new"])}, "dataset")
    commit = cache_snapshot(offline_hf_home, "org/reviews", "v1", {"plain_text/test-0.parquet": parquet(["old a", "old b"]),
                                                           "plain_text/train-0.parquet": parquet(["x"])}, "dataset")
    registry = {"reviews": {"source": "hf", "id": "org/reviews", "revision": "v1", "config": "plain_text",
                            "split": "test", "label_column": "label"}}
    df, provenance = load_dataset_table("reviews", [], allow_hub=True, registry=registry)
    assert df["text"].tolist() == ["old a", "old b"] and df["label"].tolist() == [0, 1]
    assert provenance["commit"] == commit and provenance["revision"] == "v1"
    assert provenance["files"] == ["plain_text/test-0.parquet"]

    check_hub_cache(parse_spec("reviews", registry["reviews"]))  # the parse-time check passes
    registry["reviews"]["revision"] = "v2"  # not cached
    with pytest.raises(DatasetNotFound, match=r"config 'datasets.reviews'.*'org/reviews' revision 'v2'.*source: local"):
        check_hub_cache(parse_spec("reviews", registry["reviews"]))
    with pytest.raises(DatasetNotFound, match=r"config 'datasets.reviews'.*'org/reviews' revision 'v2'.*source: local"):
        load_dataset_table("reviews", [], allow_hub=True, registry=registry)
