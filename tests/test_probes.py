"""Layer-wise probes against numbers the probe code did not compute: the HF model's own hidden
states, hand-built separable data, fold assignments checked clip by clip, a separate lens run,
and (on the demo model) the model's own answers on held-out speech."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import audiolens as al
from audiolens.analysis.probes import (
    PooledActivations,
    fit_probes,
    probe_folds,
    probe_sites,
    run_probes,
    sample_groups,
)
from audiolens.data import AttributeDataset, Sample


def dataset_of(clips, labels, *, speakers=None, sentences=None, name="toy") -> AttributeDataset:
    samples = [
        Sample(f"c{i}", lab, audio=wav, sampling_rate=16000,
               speaker=None if speakers is None else speakers[i],
               sentence=None if sentences is None else sentences[i])
        for i, (wav, lab) in enumerate(zip(clips, labels))
    ]
    return AttributeDataset(al.sakura_task("gender"), samples, name)


@pytest.fixture(scope="module")
def toy(clips) -> AttributeDataset:
    """Eight clips (the four shared ones twice), two speakers per label."""
    return dataset_of(clips * 2, ["male", "female", "female", "male"] * 2,
                      speakers=["a", "c", "d", "b", "b", "d", "c", "a"])


# --------------------------------------------------------------------------- activations


@pytest.mark.parametrize("positions", ["last", "audio"])
def test_pooled_activations_equal_hf_hidden_states(tiny_model, gender_batch, positions):
    reader = PooledActivations(probe_sites(tiny_model), positions)
    al.LogitLens(al.sakura_task("gender"), positions=("last",)).run(tiny_model, gender_batch, interventions=[reader])
    acts = reader.stacked()
    # HF's last hidden state is final-normed; the raw output of the last block comes from a
    # plain PyTorch hook on it.
    raw = {}

    def keep(module, args, out) -> None:  # returns None: the output stays as it is
        raw["last"] = out[0] if isinstance(out, tuple) else out

    handle = tiny_model.layers[-1].register_forward_hook(keep)
    try:
        with torch.no_grad():
            out = tiny_model.hf_model(**gender_batch.inputs, output_hidden_states=True)
    finally:
        handle.remove()
    rows = torch.arange(len(gender_batch))
    mask = gender_batch.span("audio").float()
    L = tiny_model.n_layers
    torch.testing.assert_close(tiny_model.final_norm(raw["last"]), out.hidden_states[L])
    for layer in range(L + 1):
        got = torch.from_numpy(acts[tiny_model.resid_name(layer)])
        hidden = out.hidden_states[layer] if layer < L else raw["last"]
        if positions == "last":
            want = hidden[rows, gender_batch.positions["last"]]
        else:  # mean over each row's own audio tokens, by hand
            want = torch.stack([hidden[r][mask[r].bool()].mean(0) for r in range(len(gender_batch))])
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_reader_changes_nothing_and_lens_is_the_plain_lens(tiny_model, gender_batch):
    task = al.sakura_task("gender")
    plain = al.LogitLens(task, positions=("last",)).run(tiny_model, gender_batch)
    reader = PooledActivations(probe_sites(tiny_model), "last")
    read = al.LogitLens(task, positions=("last",)).run(tiny_model, gender_batch, interventions=[reader])
    assert torch.equal(plain.label_logits, read.label_logits)
    assert reader.writes(tiny_model) == []


# --------------------------------------------------------------------------- fitting


def test_separable_data_is_found_and_its_control_is_not():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    signal = rng.normal(size=(80, 16)) + 8.0 * y[:, None] * np.eye(16)[0]  # separable along one direction
    noise = {("decoder", k): rng.normal(size=(80, 16)) for k in range(1, 9)}
    table, preds = fit_probes({("decoder", 0): signal, **noise}, y, 2, folds=5, seed=0)
    sig = table.iloc[0]
    assert sig.accuracy >= 0.95
    # Chance (0.5) inside the control's interval; pure-noise layers at chance on average (one
    # draw alone wanders by about ±0.06 at n = 80).
    assert sig.control_ci_low <= 0.5 <= sig.control_ci_high
    assert abs(table.accuracy[1:].mean() - 0.5) < 0.06
    assert sig.selectivity > 0.3
    # The table's accuracy is the share of out-of-fold predictions that are right.
    p0 = preds[preds.layer == 0]
    assert sig.accuracy == (p0.prediction == p0.target).mean()
    assert sig.control_accuracy == (p0.control_prediction == p0.control_target).mean()
    # The control labels are the true ones shuffled (same counts), half of each class each
    # way, fixed by the seed.
    assert sorted(p0.control_target) == sorted(y)
    assert ((p0.control_target == 1) & (p0.target == 1)).sum() == 20
    again, _ = fit_probes({("decoder", 0): signal, **noise}, y, 2, folds=5, seed=0)
    assert again.equals(table)
    lo, hi = al.metrics.wilson_interval(round(sig.accuracy * 80), 80)
    assert (sig.ci_low, sig.ci_high) == (lo, hi)


def test_held_out_design_fits_on_train_and_scores_the_rest():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 20)
    x = rng.normal(size=(40, 4)) + 3.0 * y[:, None]
    train = np.arange(40) % 2 == 0
    table, preds = fit_probes({("decoder", 0): x}, y, 2, train=train, ids=[f"c{i}" for i in range(40)])
    assert (table.grouped_by[0], table.folds[0], table.n[0]) == ("held-out", 1, 20)
    assert preds.id.tolist() == [f"c{i}" for i in range(1, 40, 2)]
    # One probe fitted on the training clips, by hand, predicts the same.
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scale = StandardScaler().fit(x[train])
    clf = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=0).fit(scale.transform(x[train]), y[train])
    np.testing.assert_array_equal(preds.prediction, clf.predict(scale.transform(x[~train])))


def test_grouped_folds_keep_each_speaker_in_one_fold():
    y = np.array([0, 1] * 15)
    speakers = np.array([f"s{i % 6}" for i in range(30)])  # s0, s2, s4 label 0; s1, s3, s5 label 1
    folds = probe_folds(y, speakers, folds=3, seed=0)
    for s in set(speakers):
        assert len(set(folds[speakers == s])) == 1, s
    assert sorted(set(folds)) == [0, 1, 2]
    # Stratified: every fold holds both labels.
    for k in range(3):
        assert set(y[folds == k]) == {0, 1}


def test_without_groups_a_speaker_would_straddle_folds():
    """The ungrouped split does put one speaker on both sides (what grouping prevents)."""
    y = np.array([0, 1] * 15)
    speakers = np.array([f"s{i % 6}" for i in range(30)])
    folds = probe_folds(y, None, folds=3, seed=0)
    assert any(len(set(folds[speakers == s])) > 1 for s in set(speakers))


def test_fewer_groups_than_folds_uses_one_fold_per_group():
    y = np.array([0, 1] * 6)
    speakers = np.array(list("abcd") * 3)
    with pytest.warns(al.errors.WeakEvidence, match="4 speaker/sentence groups for 5 folds"):
        folds = probe_folds(y, speakers, folds=5)
    assert sorted(set(folds)) == [0, 1, 2, 3]


def test_groups_come_from_sample_metadata(clips):
    labels = ["male", "female", "female", "male"]
    ds = dataset_of(clips, labels, speakers=list("abcd"), sentences=list("wxyz"))
    groups, by = sample_groups(ds)
    assert by == "speaker" and groups.tolist() == list("abcd")
    assert sample_groups(ds, "sentence")[0].tolist() == list("wxyz")
    ds = dataset_of(clips, labels, sentences=list("wxyz"))
    assert sample_groups(ds)[1] == "sentence"
    assert sample_groups(ds, None) == (None, None)


def test_sakura_metadata_names_speaker_and_sentence(tmp_path):
    from audiolens.data import load_sakura

    track = tmp_path / "data" / "Gender"
    (track / "audio").mkdir(parents=True)
    src = "tests/fixtures/demo/gender_00_male.ogg"
    shutil.copy(src, track / "audio" / "a.ogg")
    (track / "metadata.csv").write_text(
        "file,attribute_label,speaker,text\na.ogg,male,m4,Remember to switch off the lights.\n", encoding="utf-8")
    s = load_sakura(tmp_path, "gender")[0]
    assert (s.speaker, s.sentence) == ("m4", "Remember to switch off the lights.")


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_named_errors(tiny_model, clips, toy):
    with pytest.raises(al.TooFewClips, match="4 clips for 5 folds"):
        run_probes(tiny_model, toy[:4], folds=5, progress=False)
    one = dataset_of(clips, ["male"] * 4, speakers=list("abcd"))
    with pytest.raises(al.OneClass, match="needs two classes"):
        run_probes(tiny_model, one, folds=2, progress=False)
    with pytest.raises(al.errors.PositionError, match="no such position or span"):
        run_probes(tiny_model, toy, "chorus", folds=2, progress=False)
    for cls in (al.TooFewClips, al.OneClass, al.errors.PositionError):
        assert issubclass(cls, al.AudiolensError) and issubclass(cls, ValueError)
    assert issubclass(al.UngroupedFolds, al.AudiolensWarning)


def test_ungrouped_data_warns_once(tiny_model, clips):
    ds = dataset_of(clips * 2, ["male", "female", "female", "male"] * 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_probes(tiny_model, ds, folds=2, batch_size=2, progress=False)
    ungrouped = [w for w in caught if issubclass(w.category, al.UngroupedFolds)]
    assert len(ungrouped) == 1
    assert "not grouped" in str(ungrouped[0].message)


# --------------------------------------------------------------------------- end to end


def test_run_probes_table_and_lens_match_separate_runs(tiny_model, toy):
    task = al.sakura_task("gender")
    res = run_probes(tiny_model, toy, "audio", folds=2, batch_size=3, progress=False)
    t = res.table
    assert list(t.columns[:7]) == ["stack", "layer", "accuracy", "ci_low", "ci_high", "control_accuracy",
                                   "control_ci_low"]
    n_enc, n_dec = tiny_model.n_encoder_layers + 1, tiny_model.n_layers + 1
    assert t["stack"].tolist() == ["encoder"] * n_enc + ["decoder"] * n_dec
    assert t["layer"].tolist() == [*range(n_enc), *range(n_dec)]
    assert (t.n == 8).all() and (t.grouped_by == "speaker").all() and (t.positions == "audio").all()
    # The lens of the probe pass equals a lens run of its own on one batch of all clips.
    batch = tiny_model.prepare([s.audio for s in toy], 16000, task.prompt("P3"), toy.labels)
    alone = al.LogitLens(task, positions=("last",)).run(tiny_model, batch)
    dec = t[t["stack"] == "decoder"]
    np.testing.assert_allclose(dec.info_score, alone.info_scores(), atol=0)
    np.testing.assert_allclose(res.lens.label_logits, alone.label_logits, rtol=1e-4, atol=1e-5)
    # Per-fold predictions: one row per layer (encoder and decoder) and clip; each speaker in one fold.
    p = res.predictions
    assert len(p) == 8 * (n_enc + n_dec)
    assert p.groupby(["stack", "layer"]).size().to_dict() == {
        **{("encoder", i): 8 for i in range(n_enc)}, **{("decoder", i): 8 for i in range(n_dec)}}
    speakers = {s.id: s.speaker for s in toy}
    first = p[p.layer == 0]
    for spk in set(speakers.values()):
        assert first[first.id.map(speakers) == spk].fold.nunique() == 1
    assert al.probe_layers(tiny_model, toy, "audio", folds=2, progress=False).equals(t)


# --------------------------------------------------------------------------- the demo model


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@needs_espeak
def test_demo_last_layer_probe_knows_gender_at_least_as_well_as_the_model():
    """Done-when of the probes. Probe and model are scored alike: fitted on clips of the
    training voices and sentences, scored on held-out English speech (test-split sentences and
    voices, which neither has seen). The probe on the last decoder layer recognises gender at
    least as well as the model's own answer on the same clips, while its control stays near
    chance. Measured (16 clips per label each side, seed 0): probe 0.938 at block 8 (1.000 at
    block 5), model 0.938, control at block 8 0.562 (scripts/make_probe_figure.py prints them)."""
    from audiolens.data import synthetic_dataset

    train, test = synthetic_dataset("gender", 16, split="train"), synthetic_dataset("gender", 16, split="test")
    model = al.models.demo()
    res = run_probes(model, train, "last", held_out=test, truncate=True, progress=False)
    last = res.table.iloc[-1]
    assert (last["stack"], last.layer, last.grouped_by, last.n) == ("decoder", model.n_layers, "held-out", 32)
    own = res.lens.accuracy()
    assert res.lens.ids == [s.id for s in test]
    assert own >= 0.75  # the model does answer (its data card: about 0.9 on held-out clips)
    assert last.accuracy >= own
    assert last.control_ci_low <= 0.5 <= last.control_ci_high
    assert last.accuracy > last.control_ci_high


# --------------------------------------------------------------------------- encoder layers


def test_encoder_sites_come_first(tiny_model):
    sites = probe_sites(tiny_model)
    assert tiny_model.n_encoder_layers == 2
    assert sites[:3] == [("encoder", 0, "encoder.hook_embed"), ("encoder", 1, "encoder.blocks.0.hook_resid_post"),
                         ("encoder", 2, "encoder.blocks.1.hook_resid_post")]
    assert [name for _, _, name in sites[:3]] == [tiny_model.encoder_name(i) for i in range(3)]
    assert sites[3:] == [("decoder", layer, tiny_model.resid_name(layer)) for layer in range(tiny_model.n_layers + 1)]


def test_demo_model_without_encoder_layers_probes_the_decoder_only():
    # The demo's encoder has no transformer layers: encoder.hook_embed is refused there, so no
    # encoder site may be asked for.
    demo = al.models.demo()
    assert demo.n_encoder_layers == 0
    sites = probe_sites(demo)
    assert [s for s, _, _ in sites] == ["decoder"] * (demo.n_layers + 1)


def test_encoder_activations_are_the_towers_layers_averaged_over_valid_frames(tiny_model, clips):
    batch = tiny_model.prepare(clips, 16000, al.sakura_task("gender").prompt("P3"), ["male", "female"] * 2)
    reader = PooledActivations(probe_sites(tiny_model), "last")
    al.LogitLens(al.sakura_task("gender"), positions=("last",)).run(tiny_model, batch, interventions=[reader])
    acts = reader.stacked()
    # The reference: plain PyTorch hooks on the HF audio tower's own layers (not the wrapper's).
    tower_layers = tiny_model.hf_model.model.audio_tower.layers
    assert len(tower_layers) == tiny_model.n_encoder_layers
    seen = {}

    def keep(key, value) -> None:  # a hook returning None changes nothing
        seen[key] = (value[0] if isinstance(value, tuple) else value).detach().clone()

    handles = [tower_layers[0].register_forward_pre_hook(lambda m, a: keep(0, a))]
    handles += [layer.register_forward_hook(lambda m, a, o, i=i: keep(i + 1, o)) for i, layer in enumerate(tower_layers)]
    try:
        with torch.no_grad():
            tiny_model.hf_model(**batch.inputs)
    finally:
        for h in handles:
            h.remove()
    # Valid frames by hand, from the clip lengths alone: 160 samples per mel frame (10 ms at
    # 16 kHz), halved by the tower's stride-2 convolution -> 50 frames per second.
    valid = [int(np.ceil(len(w) / 160 / 2)) for w in clips]
    assert valid == [50, 125, 80, 35]
    assert len({seen[0].shape[1], *valid}) > 1  # shorter clips are padded: the average must skip that
    for layer in range(tiny_model.n_encoder_layers + 1):
        name = tiny_model.encoder_name(layer)
        want = torch.stack([seen[layer][r, : valid[r]].mean(0) for r in range(len(clips))])
        got = torch.from_numpy(acts[name])
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # The padded frames differ, so a mean over every frame would not pass.
        everything = seen[layer].mean(1)
        assert not torch.allclose(got[3], everything[3], rtol=1e-3, atol=1e-3)


def test_probes_cover_encoder_then_decoder(tiny_model, toy):
    res = run_probes(tiny_model, toy, "audio", folds=2, progress=False)
    t = res.table
    n_enc, n_dec = tiny_model.n_encoder_layers + 1, tiny_model.n_layers + 1
    assert t["stack"].tolist() == ["encoder"] * n_enc + ["decoder"] * n_dec
    assert t["layer"].tolist() == [*range(n_enc), *range(n_dec)]
    assert t["hook"].tolist() == [name for _, _, name in probe_sites(tiny_model)]
    # The lens reads the decoder only: encoder rows carry no information score.
    assert t.info_score[t["stack"] == "encoder"].isna().all() and t.info_score[t["stack"] == "decoder"].notna().all()
    # Every encoder row is scored on the same clips, folds and control as the decoder's.
    assert (t.n == 8).all() and (t.grouped_by == "speaker").all()
    p = res.predictions
    folds = p.groupby("id").fold.nunique()
    assert (folds == 1).all()  # one fold per clip whatever the layer
    assert len(p[p["stack"] == "encoder"]) == 8 * n_enc
    fig = res.plot()
    assert [x.get_text() for x in fig.axes[0].get_xticklabels()] == [
        *(f"e{i}" for i in range(n_enc)), *(str(i) for i in range(n_dec))]


# --------------------------------------------------------------------------- figure


def test_figure_draws_the_table_encoder_first():
    import pandas as pd

    rows = [{"stack": s, "layer": layer, "accuracy": 0.5 + 0.05 * i, "ci_low": 0.4, "ci_high": 0.9,
             "control_accuracy": 0.5, "control_ci_low": 0.3, "control_ci_high": 0.7, "chance": 0.5, "n": 20,
             "folds": 4, "grouped_by": "speaker", "positions": "last",
             "info_score": np.nan if s == "encoder" else 0.1 * layer, "info_ci_low": 0.0, "info_ci_high": 1.0}
            for i, (s, layer) in enumerate([("encoder", 0), ("encoder", 1), ("decoder", 0), ("decoder", 1),
                                            ("decoder", 2)])]
    table = pd.DataFrame(rows)

    class Enc:  # an encoder-lens stand-in: a score per encoder layer, over 20 clips
        def info_scores(self):
            return np.array([0.5, 0.75])

        def __len__(self):
            return 20

    from audiolens.analysis.plots import plot_probes

    fig = plot_probes(table, encoder_lens=Enc())
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    probe = lines["probe (present)"]
    np.testing.assert_array_equal(probe.get_xdata(), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(probe.get_ydata(), table.accuracy)
    lens = lines["logit lens (read by the head)"]
    np.testing.assert_array_equal(lens.get_xdata(), [2, 3, 4])  # decoder layers after the encoder's
    np.testing.assert_allclose(lens.get_ydata(), [0.0, 0.1, 0.2])
    np.testing.assert_allclose(lines["encoder lens (usable by the LLM)"].get_ydata(), [0.5, 0.75])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["e0", "e1", "0", "1", "2"]


# --------------------------------------------------------------------------- study


def test_study_records_probes_resumably(tiny_model, toy, tmp_path):
    notes = []
    study = al.Study(tiny_model, [toy], prompts=["P3"], enrich=None, out=tmp_path, probes=True,
                     probe_positions="audio", probe_folds=2, progress=False, log=notes.append)
    study.run()
    direct = run_probes(tiny_model, toy, "audio", folds=2, progress=False)
    table = study.probe_table()
    cols = ["layer", "accuracy", "ci_low", "ci_high", "control_accuracy", "info_score"]
    np.testing.assert_allclose(table[cols].to_numpy(float), direct.table[cols].to_numpy(float))
    # The probe pass's lens is the study's own plain P3 record.
    dec = table[table["stack"] == "decoder"]
    np.testing.assert_allclose(dec.info_score, study.result("gender", "P3").info_scores())
    assert table.info_score[table["stack"] == "encoder"].isna().all()
    assert (tmp_path / "tables" / "probes.csv").is_file()
    assert study.probe_figure("gender").is_file()
    # Stored: a table, per-fold predictions and a setup; no activations.
    folder = tmp_path / "records" / study.model_name / "gender"
    assert sorted(p.name for p in folder.glob("probes.*")) == [
        "probes.audio.json", "probes.audio.predictions.csv", "probes.audio.table.csv"]
    frame = study.to_frame()
    probe_rows = frame[frame.intervention == "probe"]
    n_sites = tiny_model.n_encoder_layers + 1 + tiny_model.n_layers + 1
    assert len(probe_rows) == 8 * n_sites
    assert probe_rows.groupby("stack").size().to_dict() == {"encoder": 8 * (tiny_model.n_encoder_layers + 1),
                                                             "decoder": 8 * (tiny_model.n_layers + 1)}
    assert set(frame.intervention) == {"none", "audio_mask", "probe", "probe_control"}
    last = probe_rows[(probe_rows["stack"] == "decoder") & (probe_rows.layer == tiny_model.n_layers)]
    assert last.correct.mean() == table.accuracy.iloc[-1]
    # A second run reuses the stored probes; a changed setup (fold count) runs them again.
    setup = folder / "probes.audio.json"
    stamp = setup.stat().st_mtime_ns
    study.run()
    assert setup.stat().st_mtime_ns == stamp and any("probes of gender found on disk" in n for n in notes)
    al.Study(tiny_model, [toy], prompts=["P3"], enrich=None, out=tmp_path, probes=True, probe_positions="audio",
             probe_folds=3, progress=False).run()
    assert '"folds": 3' in setup.read_text()
    # Loaded without a model, the report still has them.
    assert len(al.Study.load(tmp_path).probe_table()) == n_sites


def test_reproduce_whole_model_writes_probe_table_and_figure(tiny_model, toy, tmp_path):
    from audiolens.study.reproduce import reproduce

    lines: list[str] = []
    done = reproduce(tiny_model, [toy], tmp_path, prompts=("P3",), n_probe=3, scales=(0.0,), progress=False,
                     echo=lines.append, whole_model=True)
    table = pd.read_csv(tmp_path / "tables" / "probes.csv")
    n_enc = tiny_model.n_encoder_layers + 1
    assert table["stack"].tolist() == ["encoder"] * n_enc + ["decoder"] * (tiny_model.n_layers + 1)
    assert table["layer"].tolist() == [*range(n_enc), *range(tiny_model.n_layers + 1)]
    assert (table["folds"] == 4).all() and (table["grouped_by"] == "speaker").all()  # four speakers
    assert done.probe_figures == {"gender": tmp_path / "figures" / "probes_gender.png"}
    assert done.probe_figures["gender"].is_file()
    assert any(line.startswith("layer-wise probes") for line in lines)
    assert any("gender (4 folds grouped by speaker): interval clear of the control's from" in line for line in lines)
    # --whole-model runs the encoder lens too: its table, its summary line, its rows.
    enc = pd.read_csv(tmp_path / "tables" / "encoder_lens.csv")
    assert enc.encoder_layer.tolist() == list(range(tiny_model.n_encoder_layers + 1)) and (enc.n == 8).all()
    np.testing.assert_allclose(enc.info_score, done.study.encoder_lens_table().info_score)
    assert any(line.startswith("encoder lens") for line in lines)
    assert any("\n  gender (n = 8): e0 " in line for line in lines)
    assert "tables/encoder_lens.csv" in lines[-1]


def test_study_probes_fit_on_training_clips_and_score_the_studied_ones(tiny_model, toy, tmp_path):
    train, studied = toy[:4], toy[4:]
    study = al.Study(tiny_model, [studied], prompts=["P3"], enrich=None, out=tmp_path, probes=True,
                     probe_train=[train], progress=False)
    study.run()
    table = study.probe_table()
    direct = run_probes(tiny_model, train, "last", held_out=studied, progress=False).table
    assert (table.grouped_by == "held-out").all() and (table.n == 4).all()
    np.testing.assert_allclose(table[["accuracy", "control_accuracy", "info_score"]].to_numpy(float),
                               direct[["accuracy", "control_accuracy", "info_score"]].to_numpy(float))
    setup = json.loads((tmp_path / "records" / study.model_name / "gender" / "probes.last.json").read_text())
    assert setup["train_ids"] == [s.id for s in train] and setup["ids"] == [s.id for s in studied]


# --------------------------------------------------------------------------- study: the encoder lens


def test_study_records_the_encoder_lens_resumably(tiny_model, toy, tmp_path, monkeypatch):
    from audiolens.analysis import plots
    from audiolens.analysis.plots import plot_probes
    from audiolens.study.encoder_lens import encoder_lens_result

    notes: list[str] = []
    study = al.Study(tiny_model, [toy], prompts=["P3"], enrich=None, out=tmp_path, probes=True,
                     probe_folds=2, encoder_lens=True, progress=False, log=notes.append, batch_size=3)
    study.run()
    n = tiny_model.n_encoder_layers
    # Against a run of its own: every clip in one batch, the plain EncoderLens.
    task = al.sakura_task("gender")
    batch = tiny_model.prepare([s.audio for s in toy], 16000, task.prompt("P3"), toy.labels, ids=[s.id for s in toy])
    direct = al.EncoderLens(task).run(tiny_model, batch)
    stored = encoder_lens_result(study.store, study.model_name, "gender")
    assert stored.ids == direct.ids and len(stored) == 8 and stored.decoder_layer == tiny_model.n_layers
    torch.testing.assert_close(stored.logits_at("last"), direct.logits_at("last"), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(stored.info_scores(), direct.info_scores())
    # At the last encoder layer it is the plain run the study recorded.
    plain = study.result("gender", "P3")
    torch.testing.assert_close(stored.logits_at("last")[n], plain.logits_at("last")[-1], rtol=1e-4, atol=1e-5)
    # The table, and the frame's rows: one per clip, encoder layer and label.
    table = study.encoder_lens_table()
    assert table.encoder_layer.tolist() == list(range(n + 1)) and (table.n == 8).all()
    np.testing.assert_allclose(table.info_score, direct.info_scores())
    assert (tmp_path / "tables" / "encoder_lens.csv").is_file()
    frame = study.to_frame()
    rows = frame[frame.intervention == "encoder_lens"]
    assert len(rows) == 8 * (n + 1) * 2 and (rows["stack"] == "encoder").all()
    per_layer = rows[rows.label == "male"].groupby("layer").correct.mean()
    np.testing.assert_allclose(per_layer.to_numpy(float), direct.info_scores())
    assert {"none", "audio_mask", "probe", "probe_control", "encoder_lens"} == set(frame.intervention)
    # The figure: the encoder lens line at the encoder's x positions, before the decoder's.
    drawn = []
    monkeypatch.setattr(plots, "plot_probes", lambda table, encoder_lens=None, **kw: drawn.append(encoder_lens)
                        or plot_probes(table, encoder_lens=encoder_lens, **kw))
    assert study.probe_figure("gender").is_file()
    assert len(drawn) == 1 and drawn[0].ids == stored.ids  # the stored encoder lens is drawn
    np.testing.assert_array_equal(drawn[0].info_scores(), stored.info_scores())
    fig = plot_probes(study.probe_table(), encoder_lens=stored)
    line = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}["encoder lens (usable by the LLM)"]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(n + 1))
    np.testing.assert_allclose(line.get_ydata(), direct.info_scores())
    with pytest.raises(ValueError, match="encoder layers but the probe table"):
        plot_probes(study.probe_table().query("stack == 'decoder'"), encoder_lens=stored)
    # Resumable: a second run reuses it; other clips run it again.
    _, setup = study.store.encoder_lens_paths(study.model_name, "gender", "P3")
    stamp = setup.stat().st_mtime_ns
    study.run()
    assert setup.stat().st_mtime_ns == stamp and any("encoder lens of gender found on disk" in m for m in notes)
    al.Study(tiny_model, [toy[:6]], prompts=["P3"], enrich=None, out=tmp_path, encoder_lens=True,
             progress=False).run()
    assert json.loads(setup.read_text())["ids"] == [s.id for s in toy[:6]]
    assert len(encoder_lens_result(al.Study.load(tmp_path).store, study.model_name, "gender")) == 6
    # A file that does not fit its setup is refused, naming it.
    logits, _ = study.store.encoder_lens_paths(study.model_name, "gender", "P3")
    logits.write_text("\n".join(logits.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(al.study.records.RecordError, match="rows do not fit its setup"):
        encoder_lens_result(study.store, study.model_name, "gender")


def test_study_skips_the_encoder_lens_without_encoder_layers(clips, tmp_path):
    demo = al.models.demo()
    ds = dataset_of(clips, ["male", "female", "female", "male"], speakers=list("abcd"))
    notes: list[str] = []
    study = al.Study(demo, [ds], prompts=["P3"], enrich=None, out=tmp_path, encoder_lens=True,
                     progress=False, log=notes.append)
    study.run()
    assert any("no encoder lens: its audio encoder has no transformer layers" in m for m in notes)
    assert not list(tmp_path.rglob("encoder_lens.*"))
    assert study.encoder_lens_table().empty
    assert "encoder_lens" not in set(study.to_frame().intervention)
