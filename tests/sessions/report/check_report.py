#!/usr/bin/env python3
"""End-to-end check of `kvwb report` through the binary (ctest: report.cli).

On a small synthetic capture (kvwb synth) and, when present, on the real tiny1m capture:
  - `kvwb report CAPTURE FLAGS --out r.html --pdf r.pdf` and `kvwb run CAPTURE FLAGS --json run.json`
    with the same flags;
  - the HTML parses (html.parser), has no script, no external resource; every chart is a <figure>
    holding one <svg> that is well-formed XML; the expected charts are all there;
  - the configuration block is the run's canonical configuration, the SHA-256 is the capture's,
    the SYNTHETIC banner is there exactly for the synthetic capture;
  - every number with a data-key equals `kvwb run --json` at that path (exactly, via the
    round-trip %.17g data-value) and its displayed text agrees to its printed digits; every
    (layer, stream) has its bytes, ratio and relative MSE in the table;
  - the PDF starts with %PDF-, has pages (pdfinfo, when installed, agrees; pdftotext finds the
    SHA-256 and the ratio);
  - a sweep store report: Pareto chart, all cells, and the chosen cell's numbers equal its record;
  - usage errors exit 2 (configuration flags with --store, writing over the capture, no output).
Usage: check_report.py KVWB [REAL_DATA_DIR]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

KVWB = sys.argv[1]
REAL = sys.argv[2] if len(sys.argv) > 2 else ""
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def run(args, expect=0):
    p = subprocess.run([KVWB] + args, capture_output=True, text=True)
    if p.returncode != expect:
        print(p.stdout, p.stderr)
        raise SystemExit("kvwb %s exited %d, expected %d" % (" ".join(args), p.returncode, expect))
    return p


class ReportParser(HTMLParser):
    """Collects figures (with their raw SVG), keyed numeric cells, ids, scripts and links."""

    def __init__(self, raw):
        super().__init__(convert_charrefs=True)
        self.raw = raw
        self.figures = {}       # figure id -> number of <svg> inside
        self.cells = []         # (data-key, data-value, text)
        self.ids = {}           # id -> tag
        self.text_of = {}       # id -> text (pre, p)
        self.forbidden = []     # script, link, img, iframe, object, external href/src
        self._figure = None
        self._cell = None
        self._capture = None
        self.svg_count = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "link", "img", "iframe", "object", "embed"):
            self.forbidden.append(tag)
        for k in ("src", "href"):
            v = a.get(k)
            if v is not None and not v.startswith("#"):
                self.forbidden.append("%s=%s" % (k, v))
        if "id" in a:
            self.ids[a["id"]] = tag
        if tag == "figure":
            self._figure = a.get("id")
            self.figures[self._figure] = 0
        if tag == "svg":
            self.svg_count += 1
            if self._figure is not None:
                self.figures[self._figure] += 1
        if tag in ("td", "th") and "data-key" in a:
            self._cell = [a["data-key"], a.get("data-value"), ""]
        if tag in ("pre", "p") and "id" in a:
            self._capture = [a["id"], ""]

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(tuple(self._cell))
            self._cell = None
        if tag in ("pre", "p") and self._capture is not None:
            self.text_of[self._capture[0]] = self._capture[1]
            self._capture = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2] += data
        if self._capture is not None:
            self._capture[1] += data


def at_path(root, path):
    node = root
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            node = node[int(part[1:-1])]
        else:
            node = node[part]
    return node


def check_html(html_path, result, synthetic, expect_charts, label):
    raw = open(html_path, encoding="utf-8").read()
    p = ReportParser(raw)
    p.feed(raw)
    check(raw.startswith("<!DOCTYPE html>"), label + ": doctype")
    check(not p.forbidden, label + ": no script or external resource, found %s" % p.forbidden[:5])
    check(not re.search(r"url\((?!#)", raw) and "@import" not in raw and "@font-face" not in raw,
          label + ": no external CSS (only url(#id) references inside the SVGs)")
    # Charts: one well-formed <svg> per figure.
    for fid, n in p.figures.items():
        check(n == 1, "%s: figure %s holds %d svg" % (label, fid, n))
    for m in re.finditer(r"<svg .*?</svg>", raw, re.S):
        try:
            ET.fromstring(m.group(0))
        except ET.ParseError as e:
            check(False, "%s: SVG not well-formed: %s" % (label, e))
    check(p.svg_count == len(p.figures), label + ": every svg sits in a figure")
    for c in expect_charts:
        check(c in p.figures, "%s: chart %s present" % (label, c))
    # Configuration, identity, SYNTHETIC.
    cfg_text = p.text_of.get("config-json")
    check(cfg_text is not None and json.loads(cfg_text) == result["config"], label + ": config-json equals the run's config")
    sha = result["capture"]["sha256"]
    check(len(sha) == 64 and sha in raw, label + ": capture sha256 present")
    sha_cells = [c for c in p.cells if c[0] == "capture.sha256"]
    check(len(sha_cells) == 1 and sha_cells[0][2] == sha, label + ": the SHA-256 cell is the capture's")
    check(("synthetic-banner" in p.ids) == synthetic, label + ": SYNTHETIC banner iff synthetic")
    # Numbers.
    n = 0
    for key, value, text in p.cells:
        if value is None:
            continue
        expected = at_path(result, key)
        check(isinstance(expected, (int, float)), "%s: %s is a number in the JSON" % (label, key))
        v = float(value)
        check(v == float(expected), "%s: %s = %r, run JSON %r" % (label, key, v, expected))
        # The text is the value rounded to 4..6 significant digits (integers exactly).
        shown = float(text)
        check(shown == v or any(shown == float("%.*g" % (d, v)) for d in (4, 5, 6)),
              "%s: %s shows %s for %r" % (label, key, text, v))
        n += 1
    keys = {c[0] for c in p.cells}
    for i, layer in enumerate(result["layers"]):
        for s in ("k", "v"):
            for f in ("bytes", "ratio_vs_bf16", "rel_mse"):
                if f in layer[s]:
                    check("layers[%d].%s.%s" % (i, s, f) in keys, "%s: layer %d %s %s in the table" % (label, layer["layer"], s, f))
    for k in ("ratio_vs_bf16", "total_bytes", "bf16_bytes", "totals.k.rel_mse", "totals.v.rel_mse"):
        check(k in keys, "%s: %s in the report" % (label, k))
    print("%s: %d figures, %d keyed numbers equal to the run JSON" % (label, len(p.figures), n))
    return p


def check_pdf(pdf_path, sha, ratio, label):
    data = open(pdf_path, "rb").read()
    check(data.startswith(b"%PDF-1."), label + ": PDF header")
    check(data.rstrip().endswith(b"%%EOF"), label + ": PDF trailer")
    pages = len(re.findall(rb"/Type /Page /Parent", data))
    check(pages >= 3, label + ": PDF has %d pages" % pages)
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", pdf_path], capture_output=True, text=True)
        check(info.returncode == 0 and not info.stderr.strip(), label + ": pdfinfo accepts it: " + info.stderr[:200])
        m = re.search(r"Pages:\s+(\d+)", info.stdout)
        check(m and int(m.group(1)) == pages, label + ": pdfinfo pages")
    if shutil.which("pdftotext"):
        txt = subprocess.run(["pdftotext", "-layout", pdf_path, "-"], capture_output=True, text=True).stdout
        check(sha in txt.replace("\n", ""), label + ": the PDF text holds the SHA-256")
        check("Ratio vs bf16" in txt and ("%.6g" % ratio) in txt, label + ": the PDF text holds the ratio %.6g" % ratio)
    print("%s: PDF with %d pages" % (label, pages))


def report_vs_run(capture, flags, tmp, name, synthetic, expect_charts):
    html, pdf, rj = (os.path.join(tmp, name + x) for x in (".html", ".pdf", ".json"))
    run(["report", capture] + flags + ["--out", html, "--pdf", pdf, "--quiet"])
    run(["run", capture] + flags + ["--json", rj, "--quiet"])
    result = json.load(open(rj))
    check_html(html, result, synthetic, expect_charts, name)
    check_pdf(pdf, result["capture"]["sha256"], result["ratio_vs_bf16"], name)
    return result


RUN_CHARTS = ["chart-layer-bytes", "chart-layer-error", "chart-layer-attention", "chart-layer-attn-out", "chart-d-eff",
              "chart-spectrum-cumulative", "chart-spectrum-eigen", "chart-residuals-k", "chart-residuals-v",
              "chart-kurtosis", "chart-outliers"]


def main():
    tmp = tempfile.mkdtemp(prefix="kvwb-report-")
    try:
        cap = os.path.join(tmp, "synthetic.kvc.h5")
        run(["synth", cap, "--layers", "3", "--kv-heads", "2", "--q-heads", "4", "--head-dim", "32", "--seqs", "2",
             "--tokens", "96"])
        flags = ["--block-size", "32", "--boundary", "2", "--bits-v", "2"]
        report_vs_run(cap, flags, tmp, "synthetic", True, RUN_CHARTS + ["chart-sigma-q-cond", "chart-sigma-q-max-l"])

        # A sweep store: the frontier, every cell, and the chosen cell's stored numbers.
        grid = os.path.join(tmp, "grid.json")
        json.dump({"grids": [{"bits_k": [2, 3], "bits_v": [2, 3]}, {"k_codec": ["q8_0"], "v_codec": ["q4_0"]}],
                   "fixed": {"block_size": 32}}, open(grid, "w"))
        store = os.path.join(tmp, "store")
        run(["sweep", cap, "--grid", grid, "--out", store, "--jobs", "2"])
        shtml = os.path.join(tmp, "store.html")
        run(["report", cap, "--store", store, "--cell", "1", "--no-analysis", "--out", shtml, "--quiet"])
        rec = [json.loads(l) for l in open(os.path.join(store, "results.jsonl")) if l.strip()]
        cell1 = [r for r in rec if r["cell"] == 1][0]["result"]
        p = check_html(shtml, cell1, True, ["chart-pareto-attn-out-rel-err", "chart-layer-error"], "store")
        check("sweep-table" in p.ids and "pareto-attn-out-rel-err" in p.ids, "store: sweep and frontier tables")
        raw = open(shtml).read()
        check(raw.count("<tr>") >= len(rec), "store: a row per cell")

        # A bundle check: `kvwb bundle-check`'s verdict and counts.
        bundle = os.path.join(tmp, "bundle")
        run(["export-bundle", cap] + flags[:2] + ["--out", bundle])
        bhtml = os.path.join(tmp, "bundle.html")
        run(["report", cap] + flags[:2] + ["--bundle", bundle, "--no-analysis", "--out", bhtml, "--quiet"])
        braw = open(bhtml).read()
        bp = ReportParser(braw)
        bp.feed(braw)
        check("bundle-check" in bp.ids and "bundle-roundtrip" in bp.ids, "bundle: check and round-trip tables")
        check(">PASS<" in braw, "bundle: the verdict of a fresh bundle is PASS")
        check("deploy.env: " in braw and "MANIFEST.json" in braw, "bundle: the checks are listed")

        # Usage errors.
        run(["report", cap, "--store", store, "--bits-k", "3", "--out", os.path.join(tmp, "x.html")], expect=2)
        run(["report", cap, "--out", cap], expect=2)
        run(["report", cap], expect=2)
        run(["report", cap, "--out", os.path.join(tmp, "no", "such", "r.html")], expect=1)
        run(["report", cap, "--store", store, "--cell", "99", "--out", os.path.join(tmp, "x.html")], expect=2)
        check(not os.path.exists(os.path.join(tmp, "x.html")), "no report written on a usage error")

        tiny = os.path.join(REAL, "tiny1m_wikitext2.kvc.h5") if REAL else ""
        if tiny and os.path.exists(tiny):
            report_vs_run(tiny, ["--block-size", "256"], tmp, "tiny1m", False,
                          RUN_CHARTS + ["chart-sigma-q-cond", "chart-sigma-q-max-l"])
        else:
            print("SKIP tiny1m part: real data not found (%s)" % (REAL or "no folder given"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("report checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
