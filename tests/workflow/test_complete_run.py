"""Reading Snakemake's summary for missing files, and where targets end and options begin."""

from layerwise.workflow.complete_run import missing_outputs, split_targets

SUMMARY = """Building DAG of jobs...
output_file\tdate\trule\tlog-file(s)\tstatus\tplan
c.txt\tSun Dec  6 20:09:57 2026\tc\t\tok\tno update
b.txt\t-\tb\t\tmissing\tno update
t.txt\t-\tt\t\tremoved temp file\tno update
d/\t-\td\t\tmissing\tupdate pending
"""


def test_missing_files_snakemake_would_not_rebuild_but_not_removed_temp_files():
    assert missing_outputs(SUMMARY) == ["b.txt"]  # d/ is rebuilt anyway (update pending)
    assert missing_outputs("Nothing to be done.") == []


def test_targets_are_the_words_before_the_first_option():
    assert split_targets(["a.pdf", "b.csv", "--cores", "2", "--resources", "gpu=2", "mem_mb=9"]) == (
        ["--cores", "2", "--resources", "gpu=2", "mem_mb=9"], ["a.pdf", "b.csv"])
    assert split_targets(["--cores", "all"]) == (["--cores", "all"], [])
