"""The planner: Dockerfile stages to an op graph, plus the image config and history.

`strata.plan.ops` is the graph contract the solver reads; `strata.plan.convert.plan_build`
produces a `strata.plan.result.BuildPlan`. This package file imports nothing so that the
solver can use the ops without pulling in the Dockerfile frontend.
"""
