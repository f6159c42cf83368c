"""Tasks: the JSONL format users author, its validation, and loaders for public benchmarks.

One task per line:
    {"id", "prompt", "category", "checklist": [{"id", "description", "check": {...}, "weight": 1}],
     "reference_html": optional}
`description` is what an MLLM judge reads; `check` is the machine-checkable form the offline critic runs
(see CHECK_KINDS). ArtifactsBench and WebGen-Bench records have descriptions only: they need the MLLM critic
(ArtifactsBench's loader and judging protocol live in relook.artifactsbench).
The seeded synthetic generator lives in relook.synth (which builds on this module, not the other way round).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

WHERE = ("top", "bottom", "left", "right", "center")

# kind -> (required fields, optional fields). Values are validated in _validate_check.
CHECK_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "exists": (("selector",), ("min", "at")),
    "text": (("text",), ("selector", "at")),
    "style": (("selector", "property", "equals"), ("at", "tolerance")),
    "color": (("selector", "color"), ("tolerance", "at")),
    "position": (("selector", "where"), ("at",)),
    "click": (("selector", "then"), ()),
    "animates": ((), ("selector", "threshold")),
}


class TaskFormatError(ValueError):
    """A task file or object that does not follow the format; the message names the line and field."""


@dataclass
class ChecklistItem:
    id: str
    description: str
    check: dict | None = None
    weight: float = 1.0
    judge_only: bool = False     # held out from the critic in the loop: only the evaluation judge sees it


@dataclass
class Task:
    id: str
    prompt: str
    category: str = "general"
    checklist: list[ChecklistItem] = field(default_factory=list)
    reference_html: str | None = None
    meta: dict = field(default_factory=dict)   # source, difficulty, synthetic spec, ...

    def view(self, which: str = "all") -> "Task":
        """The task as one critic sees it. "loop": without the judge-only items (the critic that gives rewards and
        feedback, and selects in critic-in-loop inference); "judge": only those (the evaluation judge, so an answer
        is never scored by the critic that selected it); "all". A task without judge-only items is the same
        task in every view."""
        if which == "all" or not any(it.judge_only for it in self.checklist):
            return self
        if which not in ("loop", "judge"):
            raise ValueError(f"unknown checklist view {which!r} (loop, judge or all)")
        keep = [it for it in self.checklist if it.judge_only == (which == "judge")]
        return replace(self, checklist=keep)

    @property
    def checkable(self) -> bool:
        """True when every item has a machine check (the offline critic can score it)."""
        return bool(self.checklist) and all(it.check is not None for it in self.checklist)

    def to_dict(self) -> dict:
        d = {"id": self.id, "prompt": self.prompt, "category": self.category,
             "checklist": [{k: v for k, v in asdict(it).items() if v is not None and (k != "judge_only" or v)}
                           for it in self.checklist]}
        if self.reference_html is not None:
            d["reference_html"] = self.reference_html
        if self.meta:
            d["meta"] = self.meta
        return d


# --------------------------------------------------------------------------------------------- validation
def _fail(where: str, msg: str):
    raise TaskFormatError(f"{where}: {msg}")


def _validate_selector(sel: Any, where: str):
    if not isinstance(sel, str) or not sel.strip():
        _fail(where, "must be a non-empty CSS selector string")
    import soupsieve
    try:
        soupsieve.compile(sel)
    except Exception as e:  # soupsieve raises SelectorSyntaxError (and friends)
        _fail(where, f"invalid CSS selector {sel!r} ({str(e).splitlines()[0]})")


def _validate_check(check: Any, where: str, depth: int = 0):
    if not isinstance(check, dict):
        _fail(where, "must be an object like {\"kind\": \"exists\", \"selector\": \"#buy\"}")
    kind = check.get("kind")
    if kind not in CHECK_KINDS:
        _fail(f"{where}.kind", f"unknown kind {kind!r} (expected one of {', '.join(CHECK_KINDS)})")
    required, optional = CHECK_KINDS[kind]
    for f in required:
        if f not in check:
            _fail(f"{where}.{f}", f"missing (a {kind!r} check needs {', '.join(required)})")
    unknown = set(check) - set(required) - set(optional) - {"kind"}
    if unknown:
        _fail(f"{where}.{sorted(unknown)[0]}", f"unknown field for a {kind!r} check")
    if "selector" in check and (kind != "text" or check.get("selector") is not None):
        _validate_selector(check["selector"], f"{where}.selector")
    if "min" in check and (not isinstance(check["min"], int) or isinstance(check["min"], bool) or check["min"] < 1):
        _fail(f"{where}.min", f"must be a positive integer, got {check['min']!r}")
    if "at" in check and (not isinstance(check["at"], int) or isinstance(check["at"], bool) or check["at"] < 0):
        _fail(f"{where}.at", f"must be a screenshot index (0, 1, 2, ...), got {check['at']!r}")
    if kind == "text" and (not isinstance(check["text"], str) or not check["text"].strip()):
        _fail(f"{where}.text", "must be a non-empty string")
    if kind == "style":
        if not isinstance(check["property"], str) or not re.fullmatch(r"-?[a-zA-Z][a-zA-Z0-9-]*", check["property"]):
            _fail(f"{where}.property", f"must be a CSS property name, got {check['property']!r}")
        if not isinstance(check["equals"], (str, int, float)) or isinstance(check["equals"], bool):
            _fail(f"{where}.equals", "must be a CSS value (string or number)")
    if kind == "color":
        from relook.colors import parse_color  # one color parser for tasks and critics
        if parse_color(check["color"]) is None:
            _fail(f"{where}.color", f"not a color: {check['color']!r} (use #rrggbb, rgb(...) or a CSS name)")
    for f in ("tolerance", "threshold"):
        if f in check and (not isinstance(check[f], (int, float)) or isinstance(check[f], bool) or check[f] < 0):
            _fail(f"{where}.{f}", f"must be a non-negative number, got {check[f]!r}")
    if kind == "position" and check["where"] not in WHERE:
        _fail(f"{where}.where", f"must be one of {', '.join(WHERE)}, got {check['where']!r}")
    if kind == "click":
        if depth >= 4:
            _fail(f"{where}.then", "click checks nest at most 4 deep")
        _validate_check(check["then"], f"{where}.then", depth + 1)


def parse_task(obj: Any, where: str = "task") -> Task:
    """Validate one task object and build a Task; errors name the field (`where` prefixes them)."""
    if not isinstance(obj, dict):
        _fail(where, f"a task must be a JSON object, got {type(obj).__name__}")
    for f in ("id", "prompt"):
        if f not in obj:
            _fail(f"{where}: field {f!r}", "missing")
    if not isinstance(obj["id"], (str, int)) or isinstance(obj["id"], bool) or str(obj["id"]).strip() == "":
        _fail(f"{where}: field 'id'", "must be a non-empty string")
    if not isinstance(obj["prompt"], str) or not obj["prompt"].strip():
        _fail(f"{where}: field 'prompt'", "must be a non-empty string")
    category = obj.get("category", "general")
    if not isinstance(category, str):
        _fail(f"{where}: field 'category'", "must be a string")
    checklist = obj.get("checklist", [])
    if not isinstance(checklist, list):
        _fail(f"{where}: field 'checklist'", "must be a list of items")
    items, seen = [], set()
    for i, it in enumerate(checklist):
        w = f"{where}: field 'checklist[{i}]'"
        if not isinstance(it, dict):
            _fail(w, "must be an object with id, description, check, weight")
        if "description" not in it or not isinstance(it["description"], str) or not it["description"].strip():
            _fail(f"{w}.description", "missing or empty")
        iid = str(it.get("id", f"c{i}"))
        if iid in seen:
            _fail(f"{w}.id", f"duplicate item id {iid!r}")
        seen.add(iid)
        check = it.get("check")
        if check is not None:
            _validate_check(check, f"{w}.check")
        weight = it.get("weight", 1)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            _fail(f"{w}.weight", f"must be a non-negative number, got {weight!r}")
        judge_only = it.get("judge_only", False)
        if not isinstance(judge_only, bool):
            _fail(f"{w}.judge_only", f"must be true or false, got {judge_only!r}")
        items.append(ChecklistItem(id=iid, description=it["description"].strip(), check=check, weight=float(weight),
                                   judge_only=judge_only))
    if items and sum(it.weight for it in items) <= 0:
        _fail(f"{where}: field 'checklist'", "weights sum to zero")
    if items and all(it.judge_only for it in items):
        _fail(f"{where}: field 'checklist'", "every item is judge_only: the critic in the loop would see none")
    ref = obj.get("reference_html")
    if ref is not None and not isinstance(ref, str):
        _fail(f"{where}: field 'reference_html'", "must be a string")
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        _fail(f"{where}: field 'meta'", "must be an object")
    return Task(id=str(obj["id"]), prompt=obj["prompt"], category=category, checklist=items, reference_html=ref,
                meta=meta)


def load_task(path: str | Path) -> Task:
    """One task object in a .json file (the `relook critique --task` input)."""
    p = Path(path)
    if not p.is_file():
        raise TaskFormatError(f"{path}: no such file")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise TaskFormatError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})")
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    return parse_task(obj, where=str(path))


def load_tasks(path: str | Path) -> list[Task]:
    """A JSONL task file (one task per line; blank lines and lines starting with // are skipped)."""
    p = Path(path)
    if not p.is_file():
        raise TaskFormatError(f"{path}: no such file")
    tasks, ids = [], set()
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TaskFormatError(f"{path} line {n}: not valid JSON (column {e.colno}: {e.msg})")
        t = parse_task(obj, where=f"{path} line {n}")
        if t.id in ids:
            raise TaskFormatError(f"{path} line {n}: field 'id': duplicate task id {t.id!r}")
        ids.add(t.id)
        tasks.append(t)
    return tasks


def save_tasks(tasks: Iterable[Task], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps(t.to_dict(), ensure_ascii=False) + "\n")
    return p


# --------------------------------------------------------------------------------------------- public formats
def _records(path: str | Path) -> list[tuple[int, dict]]:
    """JSON array or JSONL, with line numbers for error messages."""
    p = Path(path)
    if not p.is_file():
        raise TaskFormatError(f"{path}: no such file")
    text = p.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            return list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as e:
            raise TaskFormatError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})")
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                raise TaskFormatError(f"{path} line {n}: not valid JSON (column {e.colno}: {e.msg})")
    return out


def load_artifactsbench(path: str | Path) -> list[Task]:
    """ArtifactsBench / ArtifactsBench-Lite records (`index`, `question`, a `checklist` of {id, title, description,
    maxScore}, `class`, `difficulty`): relook.artifactsbench.load_lite, where the benchmark's protocol lives."""
    from relook.artifactsbench import load_lite  # it builds on this module
    return load_lite(path)


def load_webgen_bench(path: str | Path) -> list[Task]:
    """WebGen-Bench records: `instruction`, `ui_instruct` [{task, expected_result, task_category}], `Category`."""
    tasks = []
    for n, r in _records(path):
        where = f"{path} line {n}"
        if not isinstance(r, dict) or not isinstance(r.get("instruction"), str):
            raise TaskFormatError(f"{where}: field 'instruction': missing (is this a WebGen-Bench file?)")
        items = []
        for i, u in enumerate(r.get("ui_instruct") or []):
            if not isinstance(u, dict):
                continue
            task, expected = str(u.get("task", "")).strip(), str(u.get("expected_result", "")).strip()
            if task or expected:
                items.append(ChecklistItem(id=f"ui{i}", description=f"{task} Expected: {expected}".strip()))
        cat = r.get("Category") or {}
        category = cat.get("primary_category", "webgen") if isinstance(cat, dict) else str(cat)
        tasks.append(Task(id=f"wg-{r.get('id', n)}", prompt=r["instruction"], category=category, checklist=items,
                          meta={"source": "webgen-bench", "application_type": r.get("application_type")}))
    return tasks


def load_any(path: str | Path) -> list[Task]:
    """Our JSONL, or an ArtifactsBench / WebGen-Bench file, told apart by their fields."""
    recs = _records(path)
    if not recs:
        return []
    first = recs[0][1]
    if isinstance(first, dict) and "question" in first and "prompt" not in first:
        return load_artifactsbench(path)
    if isinstance(first, dict) and "instruction" in first and "prompt" not in first:
        return load_webgen_bench(path)
    return load_tasks(path)
