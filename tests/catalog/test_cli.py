"""`deskflow validate` and `deskflow schema` as an admin and CI use them."""

from __future__ import annotations

import json
import re
import shutil

from web.cli import main


def test_validate_acme_is_clean(runner, acme_path):
    result = runner.invoke(main, ["validate", str(acme_path)])
    assert result.exit_code == 0, result.output
    assert re.search(r": 0 errors, 0 warnings in \d+ files \(\d+ items, \d+ workflows\)$",
                     result.output.strip())


def test_validate_broken_prints_every_error_with_its_position(runner, broken_path):
    result = runner.invoke(main, ["validate", str(broken_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].endswith("24 errors, 1 warning in 9 files (1 items, 1 workflows)")
    for line in lines[:-1]:
        assert re.match(r"^[^:]+:\d+:\d+: ", line), line
        assert line.startswith(str(broken_path))
    assert sum(": warning: " in line for line in lines) == 1


def test_validate_json_format(runner, broken_path):
    result = runner.invoke(main, ["validate", str(broken_path), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["errors"] == 24
    first = report["problems"][0]
    assert set(first) == {"file", "line", "col", "severity", "path", "message", "hint"}


def test_validate_github_annotations(runner, broken_path):
    result = runner.invoke(main, ["validate", str(broken_path), "--format", "github"])
    assert result.exit_code == 1
    annotations = [line for line in result.output.splitlines() if line.startswith("::")]
    assert len(annotations) == 25
    assert all(re.match(r"^::(error|warning) file=[^,]+,line=\d+,col=\d+,title=[^:]*::", a)
               for a in annotations)


def test_usage_problems_exit_2(runner, tmp_path):
    assert runner.invoke(main, ["validate", str(tmp_path / "nope")]).exit_code == 2
    assert runner.invoke(main, ["validate", ".", "--format", "xml"]).exit_code == 2


def test_validate_never_shows_a_traceback(runner, tmp_path, acme_path):
    shutil.copytree(acme_path, tmp_path / "c")
    (tmp_path / "c" / "items" / "new-laptop.yaml").write_bytes(b"\xff\xfe garbage \x00")
    (tmp_path / "c" / "workflows" / "incident.yaml").write_text("[" * 3000)
    result = runner.invoke(main, ["validate", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_schema_writes_every_kind(runner, tmp_path):
    result = runner.invoke(main, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["catalog-item.schema.json", "ci-type.schema.json", "directory.schema.json",
                     "fieldset.schema.json", "guide.schema.json", "kb-article.schema.json",
                     "lookup.schema.json",
                     "scenario.schema.json", "settings.schema.json", "view.schema.json",
                     "workflow.schema.json"]
    printed = json.loads(runner.invoke(main, ["schema"]).output)
    assert set(printed) == {n.removesuffix(".schema.json") for n in names}
