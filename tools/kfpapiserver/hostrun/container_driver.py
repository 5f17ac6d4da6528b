"""Run the KFP v2 container driver for one task of the Workflow the API server created, as Argo would."""
import json, os, re, subprocess, sys
wf = json.load(open("/tmp/kfpapi-run/wf-training.json")); ann = wf["metadata"]["annotations"]
task_name, dag_id = sys.argv[1], sys.argv[2]
# --no-kubernetes-config: drop the task's Kubernetes platform config (what a pipeline compiled without
# kfp-kubernetes settings would give), to step past the 2023 driver's refusal of 2.17's SecretAsEnv fields.
drop_k8s = "--no-kubernetes-config" in sys.argv[3:]
root = [t for t in wf["spec"]["templates"] if t["name"] == "root"][0]
task = [t for t in root["dag"]["tasks"] if t["name"] == f"{task_name}-driver"][0]
def resolve(v):
    return re.sub(r"\{\{workflow\.annotations\.([^}]+)\}\}", lambda m: ann[m.group(1)], v)
p = {x["name"]: resolve(x.get("value", "")) for x in task["arguments"]["parameters"]}
out = f"/tmp/kfpapi-run/out/{task_name}"; os.makedirs(out, exist_ok=True)
args = ["/tmp/kfpapi-run/in-cluster.sh", "/tmp/kfpapi-cluster", "42495", "/tmp/kfpapi-bin/driver", "-logtostderr",
        "--type", "CONTAINER", "--pipeline_name", "mlkeel-training", "--run_id", "f7ecb943-3e42-4262-965f-a9ec130417fd",
        "--dag_execution_id", dag_id, "--component", p["component"], "--task", p["task"], "--container", p["container"],
        "--iteration_index", "-1", "--cached_decision_path", f"{out}/cached-decision",
        "--pod_spec_patch_path", f"{out}/pod-spec-patch", "--condition_path", f"{out}/condition",
        "--kubernetes_config", "{}" if drop_k8s else (p.get("kubernetes-config", "{}") or "{}"),
        "--mlmd_server_address", "127.0.0.1", "--mlmd_server_port", "8081"]
env = dict(os.environ, ML_PIPELINE_SERVICE_HOST="127.0.0.1", ML_PIPELINE_SERVICE_PORT_GRPC="18887")
r = subprocess.run(args, env=env, capture_output=True, text=True)
print("rc", r.returncode)
lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
print("\n".join((l if l[:1] in "FE" else l[:300]) for l in lines if l[:1] in "IEFW")[-4000:])
for f in ("cached-decision", "pod-spec-patch", "condition"):
    if os.path.exists(f"{out}/{f}"):
        print(f, open(f"{out}/{f}").read()[:700])
