"""Generated LaTeX macros and the provenance records behind the reproducibility appendix."""

import re

import pandas as pd
import pytest

from layerwise.workflow.macros import format_number, latex_escape, latex_table, macro_name, render_macros
from layerwise.workflow.provenance import config_hash, model_revisions, rule_wall_times


def test_macro_names_are_letters_only_and_distinct():
    names = {macro_name("norm growth", key) for key in ["smollm2-135m", "smollm2-360m", "gpt2", "gpt2-xl"]}
    assert len(names) == 4
    assert all(re.fullmatch(r"[A-Za-z]+", n) for n in names)


def test_render_rejects_invalid_names_and_escapes_text():
    with pytest.raises(ValueError, match="invalid LaTeX macro name"):
        render_macros({"Bad1": 1.0}, "test")
    out = render_macros({"Model": "gpt2_xl & co"}, "test")
    assert r"\newcommand{\Model}{gpt2\_xl \& co}" in out


@pytest.mark.parametrize("value, expected", [(0.123456, "0.123"), (83.2, "83.2"), (25000, "25{,}000"),
                                             (float("nan"), "n/a"), (True, "yes")])
def test_format_number(value, expected):
    assert format_number(value) == expected


def test_latex_escape_covers_specials():
    assert latex_escape("50% of $x_1$ #2") == r"50\% of \$x\_1\$ \#2"


def test_config_hash_is_order_independent_and_value_sensitive():
    a = {"seed": 0, "models": {"m": {"source": "random"}}}
    b = {"models": {"m": {"source": "random"}}, "seed": 0}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**a, "seed": 1})


def test_rule_wall_times_sums_jobs_per_rule(tmp_path):
    cols = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rule, name, seconds, rss in [("extract", "a.tsv", 10.0, 100), ("extract", "b.tsv", 5.0, 300),
                                     ("paper", "p.tsv", 2.0, 50)]:
        (tmp_path / rule).mkdir(exist_ok=True)
        (tmp_path / rule / name).write_text(cols + f"{seconds}\t0:00:10\t{rss}\t0\t0\t0\t0\t0\t0\t0\n")
    times = rule_wall_times(tmp_path).set_index("rule")
    assert times.loc["extract", "seconds"] == pytest.approx(15.0)
    assert times.loc["extract", "jobs"] == 2
    assert times.loc["extract", "max_rss_mb"] == 300
    assert times.loc["paper", "seconds"] == pytest.approx(2.0)


def test_model_revisions_prefer_resolved_commit_and_shorten_hashes():
    cards = [{"key": "gpt2", "source": "hf", "model_id": "openai-community/gpt2", "revision": "main",
              "commit": "607a30d783dfa663caf39e06633721c8d4cfcd7e"},
             {"key": "p", "source": "hf", "model_id": "EleutherAI/pythia-160m", "revision": "step1000"}]
    table = model_revisions(cards).set_index("model")
    assert table.loc["gpt2", "revision"] == "607a30d783df"
    assert table.loc["p", "revision"] == "step1000"


def test_latex_table_escapes_and_lets_long_ids_break_inside_their_column():
    df = pd.DataFrame({"model": ["a_b"], "id": ["pypi:pkg==1/inner_dir/file.gguf"], "seconds": [1.25]})
    tex = latex_table(df, "Models.", "tab:m", wrap={"id": "0.5\\linewidth"})
    assert "\\begin{tabular}{lp{0.5\\linewidth}l}" in tex
    assert "a\\_b & pypi:pkg==1/\\allowbreak{}inner\\_dir/\\allowbreak{}file.gguf & 1.2" in tex
    assert "\\label{tab:m}" in tex and "toprule" not in tex
    with pytest.raises(KeyError, match="revision"):
        latex_table(df, "Models.", "tab:m", wrap={"revision": "3cm"})
