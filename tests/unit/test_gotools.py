"""The Go tools' binary lists (``tools/<name>/binaries``): which binaries a tool builds, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlkeel.cluster import gotools


def test_a_tool_without_a_list_builds_one_binary_named_after_it() -> None:
    assert gotools.tool_binaries("kubecluster") == {"kubecluster": "."}


def test_the_kfp_backend_tool_lists_the_upstream_main_packages() -> None:
    binaries = gotools.tool_binaries("kfpapiserver")
    assert binaries["apiserver"] == "github.com/kubeflow/pipelines/backend/src/apiserver"
    assert {"persistence", "scheduledworkflow", "driver", "launcher-v2"} <= set(binaries)
    assert gotools.binary_path("kfpapiserver", "driver").name == "driver"
    # one cache folder per tool version, holding every binary of the tool
    assert (
        gotools.binary_path("kfpapiserver", "driver").parent == gotools.binary_path("kfpapiserver", "apiserver").parent
    )


def test_a_tool_of_several_binaries_needs_one_named() -> None:
    with pytest.raises(gotools.GoToolError, match=r"builds apiserver, .*name one \(kfpapiserver:BINARY\)"):
        gotools.binary_path("kfpapiserver")
    with pytest.raises(gotools.GoToolError, match="has no binary 'nope'"):
        gotools.ensure_binary("kfpapiserver", "nope")


def test_a_malformed_list_names_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "broken"
    tool.mkdir()
    (tool / "go.mod").write_text("module example.com/broken\n")
    (tool / "binaries").write_text("# comment\ngood example.com/cmd/good\nlonely\n")
    monkeypatch.setattr(gotools, "TOOLS_DIR", tmp_path)
    with pytest.raises(gotools.GoToolError, match=r"binaries:3: expected 'BINARY PACKAGE', got 'lonely'"):
        gotools.tool_binaries("broken")
