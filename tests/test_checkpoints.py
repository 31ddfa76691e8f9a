"""Checkpoints: safetensors round trip, config in metadata, strict loading, no pickle."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sdr_core.checkpoints import CheckpointError, load_module, read_metadata, save_module
from sdr_core.guidance import GuidanceConfig, GuidanceNet
from sdr_core.mspn import MSPN, MSPNConfig
from sdr_core.pipeline import load_pipeline

SMALL = GuidanceConfig(out_dim=8, stem_dim=4, encoder_dims=(8, 8, 8, 8), decoder_dims=(8,) * 5)


def test_round_trip_restores_config_and_weights(tmp_path):
    net = GuidanceNet(SMALL)
    path = tmp_path / "g.safetensors"
    save_module(path, net, SMALL, "guidance", {"steps": "12"})
    assert read_metadata(path)["steps"] == "12"
    loaded = load_module(path, "guidance", GuidanceConfig, GuidanceNet)
    assert loaded.config == SMALL  # tuples survive the JSON round trip
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_wrong_kind_and_missing_keys_raise(tmp_path):
    config = MSPNConfig(guidance_dim=8, embed_dim=4, window=5)
    path = tmp_path / "m.safetensors"
    save_module(path, MSPN(config), config, "mspn")
    with pytest.raises(CheckpointError, match="holds a 'mspn', not 'guidance'"):
        load_module(path, "guidance", GuidanceConfig, GuidanceNet)

    def build_bigger(cfg):
        model = MSPN(cfg)
        model.extra = torch.nn.Linear(2, 2)
        return model

    with pytest.raises(CheckpointError, match=r"missing keys \['extra.bias', 'extra.weight'\]"):
        load_module(path, "mspn", MSPNConfig, build_bigger)


def test_unreadable_file_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(CheckpointError, match="bad.safetensors: not a readable safetensors"):
        load_module(bad, "mspn", MSPNConfig, MSPN)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pipeline(checkpoint_dir=tmp_path)


def test_unknown_config_field_is_rejected(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Other:
        surprise: int = 1

    path = tmp_path / "o.safetensors"
    save_module(path, torch.nn.Linear(1, 1), Other(), "mspn")
    with pytest.raises(CheckpointError, match="has no field"):
        load_module(path, "mspn", MSPNConfig, MSPN)
