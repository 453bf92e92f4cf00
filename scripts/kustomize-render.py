#!/usr/bin/env python3
"""Renders a kustomization the way `kubectl kustomize` does, for exactly the fields den's
deploy/ uses (resources, namespace, images, replicas, patches with a strategic-merge file) and
refuses any other field, so CI can render offline without a kustomize binary.

Usage: scripts/kustomize-render.py DIR   (prints the objects as a YAML stream)
"""
import copy
import os
import sys

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
# Kinds that have no namespace (the subset den ships).
CLUSTER_SCOPED = {"Namespace"}


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def merge(base, patch):
    """Strategic merge for the shapes used here: maps merge, lists of maps merge by `name`."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(patch, list)
            and all(isinstance(i, dict) and "name" in i for i in base + patch)):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            for n, existing in enumerate(out):
                if existing["name"] == item["name"]:
                    out[n] = merge(existing, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def render(directory):
    kfile = os.path.join(directory, "kustomization.yaml")
    (k,) = load_docs(kfile)
    unknown = set(k) - SUPPORTED
    if unknown:
        sys.exit(f"{kfile}: unsupported kustomization fields {sorted(unknown)}; "
                 "extend scripts/kustomize-render.py or use kubectl kustomize")
    objects = []
    for resource in k.get("resources", []):
        path = os.path.join(directory, resource)
        objects += render(path) if os.path.isdir(path) else load_docs(path)
    for patch in k.get("patches", []):
        if set(patch) != {"path"}:
            sys.exit(f"{kfile}: only `patches: - path: FILE` is supported")
        for p in load_docs(os.path.join(directory, patch["path"])):
            targets = [o for o in objects if o["kind"] == p["kind"]
                       and o["metadata"]["name"] == p["metadata"]["name"]]
            if len(targets) != 1:
                sys.exit(f"{kfile}: patch {patch['path']} matches {len(targets)} objects")
            objects[objects.index(targets[0])] = merge(targets[0], p)
    for r in k.get("replicas", []):
        hits = [o for o in objects if o["metadata"]["name"] == r["name"] and "replicas" in o.get("spec", {})]
        if not hits:
            sys.exit(f"{kfile}: replicas for unknown {r['name']}")
        for o in hits:
            o["spec"]["replicas"] = r["count"]
    for image in k.get("images", []):
        for o in objects:
            pod = o.get("spec", {}).get("template", {}).get("spec", {})
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                name, _, tag = c["image"].partition(":")
                if name == image["name"]:
                    c["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"
    if "namespace" in k:
        for o in objects:
            if o["kind"] not in CLUSTER_SCOPED:
                o["metadata"]["namespace"] = k["namespace"]
    return objects


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    yaml.safe_dump_all(render(sys.argv[1]), sys.stdout, sort_keys=True)
