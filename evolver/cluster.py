"""Group similar runs: TF-IDF over task words and tools used, a top-k similarity graph, Louvain.

Intent (task words) and behaviour (tools) weigh half each in the cosine. Candidate pairs
come from an inverted index that skips very common features, so the cost stays near-linear.
The idf does not depend on the corpus size and Louvain runs per connected component, so runs
unrelated to a group never move it: the same group keeps its runs, id and skill.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx

from evolver.model import Trajectory
from evolver.redact import redact

__all__ = [
    "Cluster",
    "centroid",
    "characteristic",
    "cluster",
    "cluster_id",
    "cohesion",
    "families",
    "features",
    "group_sets",
    "idf",
    "idf_weight",
    "intent_families",
    "join_existing",
    "most_common",
    "task_tokens",
    "tools_used",
    "unique_runs",
]

SEED = 20240917  # Louvain's seed: fixed, so a cycle is reproducible
TOOL_PREFIX = "tool:"
TOP_K = 8  # neighbours each run links to
EXACT_LIMIT = 500  # up to this many distinct feature sets, compare every pair exactly
RERANK = 24  # candidates per run scored exactly after the inverted-index pass
IDF_SCALE = 100.0  # K in idf = log(1 + K/df)

_STOPWORDS_TEXT = """
    about above after again against all also and any are aren because been before being
    below between both but can cannot could did does doing down during each else even ever
    every few for from further had has have having her here hers herself him himself his how
    however into its itself just let like may maybe might mine more most much must myself
    need needs no nor not now off once one only other ought our ours ourselves out over own
    please same shall she should since some still such than that the their theirs them
    themselves then there these they this those though through thus too under until upon
    very was wasn were what when where whether which while who whom whose why will with
    within without would yes yet you your yours yourself yourselves also etc via per get got
    want wants wanted use used using make redacted two three four five six seven eight nine
    ten first second third fourth fifth say says said tell tells told ask asks asked mention
    mentions mentioned know sure okay thing things something someone anything anyway really
    agent agents conversation
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_WORD = re.compile(r"\b[^\W\d]{2,}\b")  # a whole \w+ token of two or more, no decimal digit
_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z-]+\]")


@dataclass(frozen=True)
class Cluster:
    """A group of similar runs with the words and tools that characterise it."""

    id: str
    members: tuple[Trajectory, ...]
    keywords: tuple[str, ...]
    tools: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.members)


def _stem(word: str) -> str:
    """A light plural folding (flights → flight, baggages → baggage), nothing cleverer."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _proper(match: re.Match[str], text: str) -> bool:
    """A capitalised word inside a sentence (a name or place) or a long all-caps code."""
    word = match.group(0)
    if word.isupper():
        return len(word) >= 5
    if not word[:1].isupper():
        return False
    before = text[max(0, match.start() - 3) : match.start()].rstrip(" \t\"'(")
    return bool(before) and before[-1] not in ".!?:;\n"


@lru_cache(maxsize=65536)
def task_tokens(text: str) -> frozenset[str]:
    """Distinct content words of a task: lowercase, no stopwords, digits, short tokens or names."""
    clean = _PLACEHOLDER.sub(" ", redact(text or ""))
    out: set[str] = set()
    for match in _WORD.finditer(clean):  # every \w+ token but those with a decimal digit
        word = match.group(0)
        tok = word.lower()
        if len(tok) < 3 or tok in STOPWORDS:
            continue
        if not word.isascii() and any(c.isdigit() for c in tok):  # '²' is a digit, not \d
            continue
        if not _proper(match, clean):
            out.add(_stem(tok))
    return frozenset(out)


def tools_used(run: Trajectory) -> set[str]:
    """The distinct tool names a run called."""
    return {step.name for step in run.tool_calls}


def features(run: Trajectory) -> frozenset[str]:
    """Binary features of a run: task words and `tool:<name>` for each tool used."""
    return task_tokens(run.task) | {TOOL_PREFIX + name for name in tools_used(run)}


def idf(doc_features: Iterable[Iterable[str]]) -> dict[str, float]:
    """Inverse document frequency, log(1 + K/df) with a fixed K rather than the corpus size.

    So a run that shares no feature with a group leaves that group's weights (and clusters,
    names and evidence) exactly as they were; rare features still weigh most."""
    df: Counter[str] = Counter()
    for feats in doc_features:
        df.update(set(feats))
    return {f: idf_weight(c) for f, c in df.items()}


def idf_weight(df: int) -> float:
    """The weight of a feature that `df` runs have. K is fixed, so document frequencies are
    additive: a store can keep them and update them with each new run."""
    return math.log(1.0 + IDF_SCALE / df)


def _vector(feats: frozenset[str], weights: Mapping[str, float]) -> dict[str, float]:
    """Unit vector with words and tools each normalised, then mixed half and half."""
    return centroid(dict.fromkeys(feats, 1), weights)


def centroid(counts: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, float]:
    """The unit vector of a group of runs from how many of them have each feature (a run is a
    group of one): idf x count, words and tools each normalised, then mixed half and half.
    Counts add up as runs arrive, so a store can keep a cluster's and recompute its centroid
    exactly under whatever the idf weights have become."""
    parts: list[dict[str, float]] = [{}, {}]
    for f in sorted(counts):  # a fixed order keeps float sums identical across processes
        if counts[f]:
            parts[f.startswith(TOOL_PREFIX)][f] = weights[f] * counts[f]
    present = [p for p in parts if p]
    vec: dict[str, float] = {}
    for part in present:
        norm = math.sqrt(sum(w * w for w in part.values())) * math.sqrt(len(present))
        for f, w in part.items():
            vec[f] = w / norm
    return vec


def _dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b[f] for f, w in a.items() if f in b)


def _neighbours(vectors: Sequence[dict[str, float]], k: int) -> list[list[tuple[float, int]]]:
    """For each vector, the other vectors ranked by cosine (best first), at most a few dozen."""
    n = len(vectors)
    postings: dict[str, list[int]] = defaultdict(list)
    for i, vec in enumerate(vectors):
        for f in vec:
            postings[f].append(i)
    exact = n <= EXACT_LIMIT
    cap = n if exact else max(40, int(4 * math.sqrt(n)))
    out: list[list[tuple[float, int]]] = []
    for i, vec in enumerate(vectors):
        partial: dict[int, float] = defaultdict(float)
        rare = [f for f in vec if len(postings[f]) <= cap]
        if not rare:  # only very common features: look along the rarest one, bounded
            rare_f = min(vec, key=lambda f: (len(postings[f]), f), default=None)
            for j in postings[rare_f][: cap * 2] if rare_f else ():
                partial[j] += 0.0
        for f in rare:
            w = vec[f]
            for j in postings[f]:
                partial[j] += w * vectors[j][f]
        partial.pop(i, None)
        if exact:
            scored = [(s, j) for j, s in partial.items()]
        else:
            top = sorted(partial.items(), key=lambda js: (-js[1], js[0]))[: max(RERANK, 3 * k)]
            scored = [(_dot(vec, vectors[j]), j) for j, _ in top]
        scored.sort(key=lambda sj: (-sj[0], sj[1]))
        out.append(scored[: max(RERANK, 3 * k)])
    return out


def characteristic(
    counts: Mapping[str, int], n: int, weights: Mapping[str, float]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Top keywords (share of the group's `n` runs x idf) and top tools (share, then idf), from
    how many of its runs have each feature."""

    def score(f: str) -> float:  # rounded, so float noise never reorders near-ties
        return round(counts[f] * weights[f] / n, 6)

    present = [f for f in counts if counts[f]]
    words = sorted(
        (f for f in present if not f.startswith(TOOL_PREFIX)), key=lambda f: (-score(f), f)
    )
    tools = sorted(
        (f for f in present if f.startswith(TOOL_PREFIX)), key=lambda f: (-counts[f], -score(f), f)
    )
    return tuple(words[:8]), tuple(t[len(TOOL_PREFIX) :] for t in tools[:6])


def _counts(members: Iterable[Trajectory], feats: Mapping[str, frozenset[str]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for run in members:
        counts.update(feats[run.id])
    return counts


def _communities(graph: nx.Graph) -> list[set[int]]:
    """Louvain per connected component, relabelled 0..m-1 in canonical order, with resolution
    scaled by the component's share of all edge weight (what modularity over the whole graph
    would use). A component no new run touched keeps its node order, so its partition."""
    total = graph.size(weight="weight")
    out: list[set[int]] = []
    for component in sorted(nx.connected_components(graph), key=min):
        nodes = sorted(component)
        if len(nodes) < 2:
            out.append(set(nodes))
            continue
        local = {node: i for i, node in enumerate(nodes)}
        sub = nx.Graph()
        sub.add_nodes_from(range(len(nodes)))
        edges = sorted(
            (min(local[a], local[b]), max(local[a], local[b]), w)
            for a, b, w in graph.edges(nodes, data="weight")
        )
        sub.add_weighted_edges_from(edges)
        share = sub.size(weight="weight") / total
        parts = nx.community.louvain_communities(sub, weight="weight", resolution=share, seed=SEED)
        out.extend({nodes[i] for i in part} for part in parts)
    return out


def cluster_id(keywords: Sequence[str], tools: Sequence[str], seen: Collection[str]) -> str:
    """A new cluster's id: a hash of its top tools and keywords, salted until not in `seen`."""
    cid, salt = _cluster_id(keywords, tools), 1
    while cid in seen:
        cid = _cluster_id(keywords, tools, f"#{salt}")
        salt += 1
    return cid


def _cluster_id(keywords: Sequence[str], tools: Sequence[str], salt: str = "") -> str:
    basis = "|".join(sorted(tools[:3])) + "#" + "|".join(sorted(keywords[:4])) + salt
    return "c-" + hashlib.sha256(basis.encode()).hexdigest()[:8]


def cluster(
    trajectories: Sequence[Trajectory],
    similarity: float = 0.3,
    k: int = TOP_K,
    *,
    prior: Mapping[str, str] | None = None,
) -> list[Cluster]:
    """Cluster runs by task words and tools; biggest first, then by id. Deterministic.

    `prior` (run id -> cluster id, from earlier cycles) keeps clusters stable: those runs
    stay where they were; a new run with the very features of earlier runs joins the cluster
    most of them are in, else the existing cluster whose centroid it is most similar to (at
    least `similarity`); only the rest are grouped afresh."""
    runs = unique_runs(trajectories)
    if not runs:
        return []
    feats = {run.id: features(run) for run in runs}
    weights = idf(feats.values())
    prior = prior or {}
    kept: dict[str, list[Trajectory]] = defaultdict(list)
    fresh: list[Trajectory] = []
    for run in runs:
        if run.id in prior:
            kept[prior[run.id]].append(run)
        else:
            fresh.append(run)
    pool = fresh
    if kept:
        known: dict[frozenset[str], Counter[str]] = defaultdict(Counter)
        for cid, members in kept.items():
            for run in members:
                known[feats[run.id]][cid] += 1
        centres = {cid: centroid(_counts(m, feats), weights) for cid, m in sorted(kept.items())}
        joined = join_existing([feats[r.id] for r in fresh], centres, weights, similarity)
        pool = []
        for run, cid in zip(fresh, joined, strict=True):
            same = known.get(feats[run.id])
            cid = most_common(same) if same else cid
            (kept[cid] if cid else pool).append(run)
    found = [(cid, members) for cid, members in sorted(kept.items())]
    seen = set(kept)
    sets: dict[frozenset[str], list[Trajectory]] = defaultdict(list)
    for run in pool:  # runs are sorted, so each feature set's runs are too
        sets[feats[run.id]].append(run)
    keys = sorted(sets, key=lambda fs: sets[fs][0].id)
    groups = [
        [r for i in part for r in sets[keys[i]]]
        for part in group_sets([(fs, len(sets[fs])) for fs in keys], weights, similarity, k)
    ]
    for members in sorted(groups, key=lambda m: (-len(m), min(r.id for r in m))):
        words, tools = characteristic(_counts(members, feats), len(members), weights)
        cid = cluster_id(words, tools, seen)
        seen.add(cid)
        found.append((cid, members))
    clusters = []
    for cid, members in found:
        members = sorted(members, key=_id)
        words, tools = characteristic(_counts(members, feats), len(members), weights)
        clusters.append(Cluster(id=cid, members=tuple(members), keywords=words, tools=tools))
    clusters.sort(key=lambda c: (-c.size, c.id))
    return clusters


def cohesion(c: Cluster) -> float:
    """Mean cosine over all pairs of members: near 1 for a tight group, low when mixed.

    From the sum of the unit vectors: |sum|^2 = n + 2 * (sum of pairwise cosines)."""
    n = c.size
    if n < 2:
        return 1.0
    feats = [features(r) for r in c.members]
    weights = idf(feats)
    total: dict[str, float] = defaultdict(float)
    for f in feats:
        for key, w in sorted(_vector(f, weights).items()):
            total[key] += w
    squared = sum(w * w for w in total.values())
    return (squared - n) / (n * (n - 1))


def intent_families(clusters: Sequence[Cluster], similarity: float = 0.5) -> dict[str, list[str]]:
    """For each cluster, the clusters (itself first) whose requests read alike: task words
    only, no tools. Runs that took different paths on like requests land in different
    clusters; a lesson about which path works is tested across all of them."""
    words = {c.id: Counter(w for r in c.members for w in task_tokens(r.task)) for c in clusters}
    weights = idf(task_tokens(r.task) for c in clusters for r in c.members)
    return families({cid: centroid(n, weights) for cid, n in words.items()}, similarity)


def families(
    centroids: Mapping[str, Mapping[str, float]], similarity: float = 0.5
) -> dict[str, list[str]]:
    """`intent_families` from each cluster's task-word centroid (in the clusters' order)."""
    out: dict[str, list[str]] = {}
    for cid, mine in centroids.items():
        out[cid] = [cid] + [
            o for o, theirs in centroids.items() if o != cid and _dot(mine, theirs) >= similarity
        ]
    return out


def most_common(clusters: Mapping[str, int]) -> str:
    """The cluster most runs are in (of equals, the smallest id): where a new run with the
    same features as those runs goes."""
    return min(clusters, key=lambda cid: (-clusters[cid], cid))


def join_existing(
    fresh: Sequence[frozenset[str]],
    centres: Mapping[str, Mapping[str, float]],
    weights: Mapping[str, float],
    similarity: float,
) -> list[str | None]:
    """For each new run's features, the existing cluster whose centroid it is most similar to
    (at least `similarity`), or None when it fits none. Centroids are not moved by the runs
    that join them here, so the answer does not depend on the runs' order."""
    out: list[str | None] = []
    ranked = sorted(centres.items())
    for feats in fresh:
        vec = _vector(feats, weights)
        score, cid = max((round(_dot(vec, c), 9), cid) for cid, c in ranked)
        out.append(cid if score >= similarity else None)
    return out


def group_sets(
    sets: Sequence[tuple[frozenset[str], int]],
    weights: Mapping[str, float],
    similarity: float,
    k: int = TOP_K,
) -> list[list[int]]:
    """Louvain communities of a top-k similarity graph over distinct feature sets, each with
    how many runs have it (runs with identical features are one point); each community as
    indices into `sets`, ascending. `sets` must be in a canonical order (by first run id)."""
    if not sets:
        return []
    vectors = [_vector(fs, weights) for fs, _ in sets]
    # A node stands for m identical runs: its self-loop holds their m(m-1)/2 pairs (cosine 1)
    # and an edge between nodes holds cosine x m_a x m_b, as if every pair were linked.
    size = [m for _, m in sets]
    graph = nx.Graph()
    graph.add_nodes_from(range(len(sets)))
    for i, m in enumerate(size):
        if m > 1:
            graph.add_edge(i, i, weight=m * (m - 1) / 2)
    for i, ranked in enumerate(_neighbours(vectors, k)):
        kept = [(s, j) for s, j in ranked if s >= similarity][:k]
        for s, j in kept:
            a, b = min(i, j), max(i, j)
            graph.add_edge(a, b, weight=round(s, 9) * size[a] * size[b])
    return [sorted(community) for community in _communities(graph)]


def _id(run: Trajectory) -> str:
    return run.id


def unique_runs(trajectories: Iterable[Trajectory]) -> list[Trajectory]:
    """Runs sorted by id, one per id (of duplicates, the smallest by JSON), whatever the order."""
    by_id: dict[str, list[Trajectory]] = defaultdict(list)
    for run in trajectories:
        by_id[run.id].append(run)
    out = []
    for rid in sorted(by_id):
        dups = by_id[rid]
        out.append(dups[0] if len(dups) == 1 else min(dups, key=lambda r: r.model_dump_json()))
    return out
