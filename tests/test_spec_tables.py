"""[baselines], [model], [priorities] and [serve]: validated when loopml.toml is loaded.

Every mistake is refused by ``load_spec`` (so by every command, before it runs) with the
file and the line of the key, the key path, what was given and a hint with a line to write;
a spec built in Python (``Spec.model_validate``) is refused with an InputError naming the
key. The defaults that the commented template shows are the defaults the models hold.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydantic
import pytest

from loopml.baselines import _DUMMY_CLS, _DUMMY_REG, baseline_config
from loopml.errors import InputError, SpecError
from loopml.project import init_project, open_project
from loopml.spec import (
    ARCHETYPES,
    DUMMY_STRATEGIES,
    ServeSpec,
    Spec,
    load_spec,
    render_spec,
)
from loopml.training import model_spec


def _write(tmp_path: Path, extra: str, task: str = "binary") -> Path:
    path = tmp_path / "loopml.toml"
    path.write_text(render_spec(name="p", task=task) + "\n" + extra, encoding="utf-8")  # type: ignore[arg-type]
    return path


def _line(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    hits = [i for i, line in enumerate(lines, start=1) if line.strip() == needle]
    assert hits, f"{needle!r} is not a line of the spec"
    return hits[-1]  # the table under test is appended last


# (the tables appended to the template, the key the error must name, the line it must
# point at, and a phrase of the message that says what is wrong)
CASES: list[tuple[str, str, str, str]] = [
    # [baselines]
    ('[baselines]\ndumy = ["majority"]', "baselines.dumy", 'dumy = ["majority"]', "unknown key"),
    ('[baselines]\ndummy = ["mean"]', "baselines.dummy", 'dummy = ["mean"]', "binary task"),
    ('[baselines]\ndummy = "majority"', "baselines.dummy", 'dummy = "majority"', "a list"),
    ('[baselines]\nquick = ["forest"]', "baselines.quick", 'quick = ["forest"]', "linear"),
    ("[baselines]\nquick = true", "baselines.quick", "quick = true", "(or false)"),
    ("[baselines]\nrules = 3", "baselines.rules", "rules = 3", "'module:function'"),
    (
        '[baselines.rules]\nfunction = "m:f"\nwhen = [["a > 1", 1]]\ndefault = 0',
        "baselines.rules",
        "[baselines.rules]",
        "either function",
    ),
    ('[baselines.rules]\nfuction = "m:f"', "baselines.rules.fuction", 'fuction = "m:f"', "unknown"),
    (
        '[baselines.rules]\nfunction = "m:f"\nper = "column"',
        "baselines.rules.per",
        'per = "column"',
        "'frame' or 'row'",
    ),
    (
        '[baselines.rules]\nwhen = "a > 1"\ndefault = 0',
        "baselines.rules.when",
        'when = "a > 1"',
        "[expression, prediction] pairs",
    ),
    (
        '[baselines.rules]\nwhen = [["a > 1"]]\ndefault = 0',
        "baselines.rules.when",
        'when = [["a > 1"]]',
        "[expression, prediction] pairs",
    ),
    (
        '[baselines.rules]\nwhen = [["a > 1", 1]]',
        "baselines.rules.default",
        "[baselines.rules]",
        "need a default",
    ),
    ("[baselines]\nolder_system = 5", "baselines.older_system", "older_system = 5", "string"),
    ("[baselines]\nliterature = 5", "baselines.literature", "literature = 5", "[[baselines"),
    ("[baselines]\nliterature = [1]", "baselines.literature[0]", "literature = [1]", "a table"),
    (
        '[[baselines.literature]]\nname = "x"\nvalue = 0.5',
        "baselines.literature[0].source",
        "[[baselines.literature]]",
        "missing",
    ),
    (
        '[[baselines.literature]]\nname = "x"\nvalue = true\nsource = "s"',
        "baselines.literature[0].value",
        "value = true",
        "a number",
    ),
    (
        '[[baselines.literature]]\nname = "x"\nvalue = 0.5\nsource = " "',
        "baselines.literature[0].source",
        'source = " "',
        "empty",
    ),
    (
        '[[baselines.literature]]\nname = "a"\nvalue = 0.5\nsource = "s"\n'
        '[[baselines.literature]]\nname = "b"\nvalue = "high"\nsource = "t"',
        "baselines.literature[1].value",
        'value = "high"',
        "a number",
    ),
    ('[baselines]\nhlp = "yes"', "baselines.hlp", 'hlp = "yes"', "true or false"),
    ("[baselines]\nseed = 1.5", "baselines.seed", "seed = 1.5", "an integer"),
    ("[baselines]\nseed = true", "baselines.seed", "seed = true", "an integer"),
    ("[baselines]\ndataset = 2", "baselines.dataset", "dataset = 2", "string"),
    # [model]
    ('[model]\nestimater = "x.Y"', "model.estimater", 'estimater = "x.Y"', "unknown key"),
    ("[model]\nestimator = 3", "model.estimator", "estimator = 3", "string"),
    ('[model]\nestimator = "a.B"\nparams = 3', "model.params", "params = 3", "a table"),
    ('[model]\nfeatures = "a"', "model.features", 'features = "a"', "a list"),
    ("[model]\nfeatures = [1]", "model.features[0]", "features = [1]", "string"),
    ('[model]\nexclude = "a"', "model.exclude", 'exclude = "a"', "a list"),
    ('[model]\npreprocess = "scale"', "model.preprocess", 'preprocess = "scale"', "'auto'"),
    ("[model]\nsanity_rows = 2", "model.sanity_rows", "sanity_rows = 2", "4"),
    ("[model]\nsanity_rows = true", "model.sanity_rows", "sanity_rows = true", "an integer"),
    ('[model]\nseed = "0"', "model.seed", 'seed = "0"', "an integer"),
    ("[model]\nname = 7", "model.name", "name = 7", "string"),
    # [priorities]
    (
        '[priorities."region=north"]\neese = 2.0',
        "priorities.region=north",
        "eese = 2.0",
        "unknown key 'eese'",
    ),
    (
        '[priorities."region=north"]\nease = -1.0',
        "priorities.region=north.ease",
        "ease = -1.0",
        "finite number >= 0",
    ),
    (
        '[priorities."region=north"]\nease = nan',
        "priorities.region=north.ease",
        "ease = nan",
        "finite number >= 0",
    ),
    (
        '[priorities."region=north"]\nimportance = "high"',
        "priorities.region=north.importance",
        'importance = "high"',
        "a number",
    ),
    (
        '[priorities]\n"region=north" = 3',
        "priorities.region=north",
        '"region=north" = 3',
        "a table with ease and importance",
    ),
    (
        '[priorities]\n"score>0.5" = { ease = true }',
        "priorities.score>0.5.ease",
        '"score>0.5" = { ease = true }',
        "a number",
    ),
    # [serve]
    ('[serve]\nhost = ""', "serve.host", 'host = ""', "at least 1"),
    ("[serve]\nport = 70000", "serve.port", "port = 70000", "65535"),
    ('[serve]\nport = "80"', "serve.port", 'port = "80"', "an integer"),
    ("[serve]\nworkers = 0", "serve.workers", "workers = 0", "1"),
    ("[serve]\ncanary_share = 1.0", "serve.canary_share", "canary_share = 1.0", "less than 1"),
    ("[serve]\ncanary_share = -0.1", "serve.canary_share", "canary_share = -0.1", "0"),
    ("[serve]\ncanary_share = inf", "serve.canary_share", "canary_share = inf", "finite"),
    ('[serve]\nshadow = "no"', "serve.shadow", 'shadow = "no"', "true"),
    ("[serve]\nlog = 1", "serve.log", "log = 1", "true"),
    ("[serve]\nmax_body_mb = 0", "serve.max_body_mb", "max_body_mb = 0", "greater than 0"),
    ("[serve]\nmax_rows = 0", "serve.max_rows", "max_rows = 0", "1"),
    ('[serve]\nrequire_token = "yes"', "serve.require_token", 'require_token = "yes"', "true"),
    ("[serve]\nflush_rows = 0", "serve.flush_rows", "flush_rows = 0", "1"),
    (
        "[serve]\nflush_seconds = 0",
        "serve.flush_seconds",
        "flush_seconds = 0",
        "greater than 0",
    ),
    (
        "[serve]\nflush_rows = 5000\nqueue_rows = 100",
        "serve.queue_rows",
        "queue_rows = 100",
        "smaller than flush_rows",
    ),
    ("[serve]\nwatch_seconds = -1", "serve.watch_seconds", "watch_seconds = -1", "0"),
    ("[serve]\nprot = 8001", "serve.prot", "prot = 8001", "unknown key"),
]


@pytest.mark.parametrize(("extra", "key", "needle", "phrase"), CASES, ids=[c[1] for c in CASES])
def test_a_mistake_is_refused_at_load_naming_key_and_line(
    tmp_path: Path, extra: str, key: str, needle: str, phrase: str
) -> None:
    path = _write(tmp_path, extra)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    err = info.value
    assert err.where == f"{path}:{_line(path, needle)}"
    assert key in err.message
    assert phrase in err.message
    assert err.hint  # always a way out


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        ('[baselines]\ndumy = ["majority"]', "did you mean baselines.dummy?"),
        ('[baselines.rules]\nfuction = "m:f"', "did you mean baselines.rules.function?"),
        ('[model]\nestimater = "x.Y"', "did you mean model.estimator?"),
        ("[serve]\nprot = 8001", "did you mean serve.port?"),
        ('[priorities."region=north"]\neese = 2.0', "did you mean ease?"),
        ("[baseline]\nseed = 1", "did you mean baselines?"),
        ('[baselines]\ndummy = ["mean"]', 'dummy = ["majority", "stratified", "prior"]'),
        ("[serve]\nport = 70000", "port = 8000"),
        ("[model]\nsanity_rows = 2", "sanity_rows = 32"),
        ('[priorities]\n"region=north" = 3', '[priorities."region=north"] with ease = 0.5'),
    ],
)
def test_the_hint_guesses_the_key_or_gives_a_line_to_write(
    tmp_path: Path, extra: str, hint: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, extra))
    assert hint in (info.value.hint or "")


def test_an_unknown_key_with_no_close_match_gets_no_guess(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, "[serve]\nzzzzzz = 1"))
    assert "did you mean" not in (info.value.hint or "")
    assert "expected one of host, port" in info.value.message


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_dummy_strategies_follow_the_task(tmp_path: Path, task: str) -> None:
    allowed = DUMMY_STRATEGIES["regression" if task == "regression" else "classification"]
    other = DUMMY_STRATEGIES["classification" if task == "regression" else "regression"]
    spec = load_spec(_write(tmp_path, f'[baselines]\ndummy = ["{allowed[-1]}"]', task))
    assert spec.baselines.dummy == (allowed[-1],)
    with pytest.raises(SpecError, match=rf"baselines\.dummy: given \['{other[0]}'\]; a {task}"):
        load_spec(_write(tmp_path, f'[baselines]\ndummy = ["{other[0]}"]', task))


def test_the_dummy_names_are_the_ones_baselines_can_fit() -> None:
    assert set(DUMMY_STRATEGIES["classification"]) == set(_DUMMY_CLS)
    assert set(DUMMY_STRATEGIES["regression"]) == set(_DUMMY_REG)


def test_a_spec_built_in_python_is_refused_naming_the_key() -> None:
    base: dict[str, Any] = {
        "project": {"name": "t", "task": "binary", "label": "label", "id": "id"},
        "metric": {"optimizing": "accuracy"},
    }
    with pytest.raises(InputError, match=r"unknown key 'eese' in priorities\.a=b") as info:
        Spec.model_validate({**base, "priorities": {"a=b": {"eese": 1.0}}})
    assert info.value.where == "priorities.a=b.eese"
    with pytest.raises(InputError, match=r"serve\.port") as info:
        Spec.model_validate({**base, "serve": {"port": -1}})
    assert info.value.where == "serve.port"
    with pytest.raises(InputError, match=r"regression task"):
        Spec.model_validate(
            {
                **base,
                "project": {**base["project"], "task": "regression"},
                "metric": {"optimizing": "rmse"},
                "baselines": {"dummy": ["prior"]},
            }
        )
    ok = Spec.model_validate({**base, "priorities": {"a=b": {"importance": 3}}})
    assert ok.priorities["a=b"].as_dict() == {"ease": 1.0, "importance": 3.0}


def test_good_tables_load_typed(tmp_path: Path) -> None:
    extra = """
[baselines]
dataset = "train@2"
quick = false
older_system = "old.parquet"
seed = 3

[baselines.rules]
when = [["a > 1", 1], ["b < 0", 0]]
default = 0

[[baselines.literature]]
name = "Doe 2021"
value = 1
source = "https://doi.org/x"

[model]
estimator = "sklearn.linear_model.LogisticRegression"
features = ["a", "b"]
exclude = ["c"]
preprocess = "none"
sanity_rows = 8
seed = 7

[model.params]
C = 10.0

[priorities."region=north"]
ease = 0.5

[serve]
port = 0
canary_share = 0.1
shadow = false
require_token = true
"""
    spec = load_spec(_write(tmp_path, extra))
    assert spec.baselines.quick == ()
    assert spec.baselines.rules is not None
    assert spec.baselines.rules.config() == {"when": [["a > 1", 1], ["b < 0", 0]], "default": 0}
    assert spec.baselines.literature[0].value == 1.0
    assert spec.model.params == {"C": 10.0} and spec.model.features == ("a", "b")
    assert spec.priorities["region=north"].as_dict() == {"ease": 0.5, "importance": 1.0}
    assert (spec.serve.port, spec.serve.canary_share, spec.serve.shadow) == (0, 0.1, False)
    assert spec.serve.require_token is True and spec.serve.workers == 1
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        spec.serve.port = 1  # type: ignore[misc]


def test_commands_read_the_typed_tables(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root, task="binary").close()
    spec_path = root / "loopml.toml"
    spec_path.write_text(
        spec_path.read_text(encoding="utf-8")
        + '\n[baselines]\nrules = "mod:fn"\n[[baselines.literature]]\nname = "x"\nvalue = 0.5\n'
        'source = "s"\n[model]\nestimator = "sklearn.tree.DecisionTreeClassifier"\n'
        "[model.params]\nmax_depth = 3\n",
        encoding="utf-8",
    )
    with open_project(root) as project:
        cfg = baseline_config(project)
        assert cfg.dummy == ["majority", "stratified", "prior"]
        assert cfg.quick == ["linear", "boosting"]
        assert cfg.rules == {"function": "mod:fn", "per": "frame"}
        assert cfg.literature == [
            {"name": "x", "value": 0.5, "source": "s", "metric": project.spec.metric.optimizing}
        ]
        ms = model_spec(project)
        assert (ms.estimator, ms.params, ms.name) == (
            "sklearn.tree.DecisionTreeClassifier",
            {"max_depth": 3},
            "decisiontreeclassifier",
        )
        # overrides: more params merge; another estimator drops the table's params
        assert model_spec(project, params={"min_samples_leaf": 2}).params == {
            "max_depth": 3,
            "min_samples_leaf": 2,
        }
        other = model_spec(project, estimator="sklearn.linear_model.LogisticRegression")
        assert other.params == {} and other.name == "logisticregression"
        assert model_spec(project, name="m", dataset="d@1").to_dict()["dataset"] == "d@1"


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("archetype", ARCHETYPES)
def test_every_template_init_writes_loads(tmp_path: Path, task: str, archetype: str) -> None:
    init_project(tmp_path, task=task, archetype=archetype).close()  # type: ignore[arg-type]
    text = (tmp_path / "loopml.toml").read_text(encoding="utf-8")
    with open_project(tmp_path) as project:
        assert project.spec.task == task and project.spec.project.archetype == archetype
        assert project.spec.serve == ServeSpec()
    # uncommented, every optional table the template shows loads too
    uncommented = re.sub(r"(?m)^# (\[|[a-z_]+ = )", r"\1", text)
    assert uncommented.count("\n[") > text.count("\n[")
    (tmp_path / "loopml.toml").write_text(uncommented, encoding="utf-8")
    spec = load_spec(tmp_path / "loopml.toml")
    # the [serve] values the template shows are the defaults
    assert spec.serve == ServeSpec()
    assert (
        spec.baselines.dummy
        == DUMMY_STRATEGIES["regression" if task == "regression" else "classification"]
    )
    assert spec.model.estimator is not None and spec.priorities["region=north"].importance == 2.0
