"""Renders a kustomization offline: the small subset of kustomize that
deploy/k8s uses, so CI can check the overlays without a kustomize binary.

Supported, as kustomize does them:
  resources   files and directories (each with its own kustomization.yaml)
  namespace   set on every namespaced object (a Namespace object must
              already bear that name: renaming it is not supported)
  patches     strategic-merge patches by `path:` or inline `patch:`, each
              aimed at the object of its own kind and metadata.name
  images      name -> newName / newTag / digest, in every container and
              init container of a pod template (or a bare Pod)

Strategic merge, for the fields deploy/k8s patches: maps merge key by key;
`null` deletes a key; lists of containers, initContainers, env, volumes,
volumeMounts, ports (containers) merge by their merge key, and every other
list is replaced. Lists in custom resources (no Kubernetes schema) are
replaced whole, as kustomize does. Anything else in a kustomization.yaml
(generators, transformers, JSON 6902 patches, `$patch` directives) is
refused with an error instead of being silently ignored.

Output order: the order of `resources`, depth first, as kustomize's legacy
order would differ only in sorting kinds; the content is what matters here.

Usage: render.py DIR  (prints the rendered objects as one YAML stream)
"""

import copy
import os
import sys

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "patches", "images"}

# Kinds that have no namespace.
CLUSTER_SCOPED = {
    "Namespace", "RuntimeClass", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
    "StorageClass", "CustomResourceDefinition", "PersistentVolume",
    "ClusterTriggerAuthentication", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "IngressClass",
}

# Merge keys of the Kubernetes list fields deploy/k8s patches (from the
# API's patchMergeKey annotations); the key depends on the parent field for
# `ports`, which is why the parent is part of the lookup.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "topologySpreadConstraints": "topologyKey",
    "tolerations": None,  # replaced: no merge key in the API
}
CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}


class RenderError(Exception):
    pass


def load_yaml_stream(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def is_builtin(obj):
    """An object of a Kubernetes API group (strategic merge applies), as
    opposed to a custom resource (lists replaced whole)."""
    api_version = obj.get("apiVersion", "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    return group == "" or "." not in group or group.endswith(".k8s.io")


def strategic_merge(base, patch, builtin, field=None, parent=None):
    """Merges `patch` into `base` (both plain YAML values); returns the result."""
    if isinstance(patch, dict):
        if "$patch" in patch or any(str(k).startswith("$") for k in patch):
            raise RenderError(f"unsupported strategic-merge directive in {patch!r}")
        if not isinstance(base, dict):
            return copy.deepcopy(patch)
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, builtin, key, field)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(patch, list):
        merge_key = None
        if builtin and isinstance(base, list):
            if field == "ports" and parent in CONTAINER_LISTS:
                merge_key = "containerPort"
            elif field == "ports":
                merge_key = "port"
            else:
                merge_key = MERGE_KEYS.get(field)
        if merge_key is None:
            return copy.deepcopy(patch)
        out = [copy.deepcopy(item) for item in base]
        for item in patch:
            if not isinstance(item, dict) or merge_key not in item:
                raise RenderError(f"list item of `{field}` without its merge key `{merge_key}`: {item!r}")
            for i, existing in enumerate(out):
                if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]:
                    out[i] = strategic_merge(existing, item, builtin, field, parent)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def object_id(obj):
    return (obj.get("kind"), (obj.get("metadata") or {}).get("name"))


def apply_patch(objects, patch, source):
    target = object_id(patch)
    if None in target:
        raise RenderError(f"{source}: a patch needs kind and metadata.name")
    matches = [i for i, obj in enumerate(objects) if object_id(obj) == target]
    if len(matches) != 1:
        raise RenderError(f"{source}: patch for {target[0]}/{target[1]} matches {len(matches)} objects")
    i = matches[0]
    if objects[i].get("apiVersion") != patch.get("apiVersion"):
        raise RenderError(
            f"{source}: patch apiVersion {patch.get('apiVersion')} differs from the object's "
            f"{objects[i].get('apiVersion')}"
        )
    objects[i] = strategic_merge(objects[i], patch, is_builtin(objects[i]))


def pod_specs(obj):
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        yield spec
    template = spec.get("template") or {}
    if "spec" in template:
        yield template["spec"]
    job_template = (spec.get("jobTemplate") or {}).get("spec", {}).get("template", {})
    if "spec" in job_template:
        yield job_template["spec"]


def split_image(image):
    """name, tag, digest of an image reference."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        image, tag = image.rsplit(":", 1)
    return image, tag, digest


def apply_images(objects, images, source):
    for entry in images:
        unknown = set(entry) - {"name", "newName", "newTag", "digest"}
        if unknown or "name" not in entry:
            raise RenderError(f"{source}: unsupported images entry {entry!r}")
        for obj in objects:
            for spec in pod_specs(obj):
                for field in CONTAINER_LISTS:
                    for container in spec.get(field) or []:
                        name, tag, digest = split_image(container.get("image", ""))
                        if name != entry["name"]:
                            continue
                        name = entry.get("newName", name)
                        if "digest" in entry:
                            container["image"] = f"{name}@{entry['digest']}"
                        else:
                            tag = entry.get("newTag", tag)
                            ref = f"{name}:{tag}" if tag else name
                            container["image"] = f"{ref}@{digest}" if digest and "newTag" not in entry else ref


def render(directory):
    path = os.path.join(directory, "kustomization.yaml")
    if not os.path.exists(path):
        raise RenderError(f"{directory}: no kustomization.yaml")
    with open(path) as f:
        kustomization = yaml.safe_load(f) or {}
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise RenderError(f"{path}: not supported by this renderer: {', '.join(sorted(unknown))}")
    if kustomization.get("kind", "Kustomization") != "Kustomization":
        raise RenderError(f"{path}: kind must be Kustomization")

    objects = []
    for resource in kustomization.get("resources") or []:
        target = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(target):
            objects.extend(render(target))
        elif os.path.isfile(target):
            objects.extend(load_yaml_stream(target))
        else:
            raise RenderError(f"{path}: resource {resource} not found")

    for n, entry in enumerate(kustomization.get("patches") or []):
        unknown = set(entry) - {"path", "patch"}
        if unknown:
            raise RenderError(f"{path}: patches[{n}]: not supported: {', '.join(sorted(unknown))}")
        if "path" in entry:
            source = os.path.join(directory, entry["path"])
            docs = load_yaml_stream(source)
        else:
            source = f"{path} patches[{n}]"
            docs = [d for d in yaml.safe_load_all(entry["patch"]) if d is not None]
        for doc in docs:
            apply_patch(objects, doc, source)

    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            kind = obj.get("kind")
            if kind == "Namespace":
                if obj["metadata"]["name"] != namespace:
                    raise RenderError(
                        f"{path}: renaming Namespace {obj['metadata']['name']} to {namespace} is not supported"
                    )
            elif kind not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = namespace

    apply_images(objects, kustomization.get("images") or [], path)
    return objects


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        objects = render(argv[1])
    except (RenderError, OSError, yaml.YAMLError) as e:
        print(f"render: {e}", file=sys.stderr)
        return 1
    yaml.safe_dump_all(objects, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
