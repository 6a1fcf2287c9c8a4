"""skillforge's learning pipeline: trajectories in, Agent Skill changes out. Pure, no I/O."""

from evolver.changes import (
    MANAGED_KEY,
    ChangeSet,
    ClusterReport,
    ErrorPattern,
    Evidence,
    SkillChange,
    SkillDoc,
)
from evolver.cluster import Cluster, cluster
from evolver.graph import best_path, to_json, to_mermaid, tool_graph, tool_path
from evolver.model import LoadedSkill, Message, Outcome, ToolCall, Trajectory
from evolver.pipeline import EvolveParams, evolve
from evolver.redact import redact, sanitize_inline
from evolver.skilldoc import is_managed, parse, problems, render, replace_managed_block, slugify
from evolver.synthesize import synthesize

__all__ = [
    "ChangeSet",
    "Cluster",
    "ClusterReport",
    "ErrorPattern",
    "Evidence",
    "EvolveParams",
    "LoadedSkill",
    "MANAGED_KEY",
    "Message",
    "Outcome",
    "SkillChange",
    "SkillDoc",
    "ToolCall",
    "Trajectory",
    "best_path",
    "cluster",
    "evolve",
    "is_managed",
    "parse",
    "problems",
    "redact",
    "render",
    "replace_managed_block",
    "sanitize_inline",
    "slugify",
    "synthesize",
    "to_json",
    "to_mermaid",
    "tool_graph",
    "tool_path",
]
