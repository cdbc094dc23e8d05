"""Rule `paper`: gather generated macros, then build the PDF with latexmk."""

import os
import shutil
import subprocess
from pathlib import Path

from layerwise.workflow.runlog import log_to_file

log = log_to_file(snakemake.log[0])
macro_files = sorted(p for p in [*snakemake.input.generated, snakemake.input.provenance[0]] if p.endswith(".tex"))
Path(snakemake.output.macros).write_text("".join(Path(p).read_text() for p in macro_files))

if shutil.which("latexmk") is None:
    raise RuntimeError("latexmk not found. Install it with: sudo apt-get install -y latexmk "
                       "texlive-latex-base texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra lmodern")
pdf = Path(snakemake.output.pdf).resolve()
build = pdf.parent / "build"
source = Path(snakemake.input.tex).resolve()
# main.tex reaches generated files as ../results/…, so TeX runs in <working dir>/paper (the sources' own
# folder in a normal run); TEXINPUTS/BIBINPUTS find the sources when the workflow runs elsewhere (--directory).
tex_cwd = Path("paper").resolve()
tex_cwd.mkdir(exist_ok=True)
env = dict(os.environ, TEXINPUTS=f"{source.parent}:", BIBINPUTS=f"{source.parent}:")
cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"-outdir={build}", str(source)]
done = subprocess.run(cmd, capture_output=True, text=True, cwd=tex_cwd, env=env)
Path(snakemake.log[0]).open("a").write(done.stdout[-20000:] + done.stderr[-5000:])
if done.returncode:
    raise RuntimeError(f"latexmk failed (exit {done.returncode}); see {snakemake.log[0]}")
shutil.copyfile(build / "main.pdf", pdf)
