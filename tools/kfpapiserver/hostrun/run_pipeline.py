"""Run every task of the training Workflow the API server created through KFP's real driver and launcher, as host
processes, in the Workflow's DAG order: root DAG driver, container driver + launcher per task, the condition DAG
driver, the tasks inside the condition. Session script (paths of the kfpapi session); see README.md."""
import json, os, re, subprocess, sys, time

WF = json.load(open("/tmp/kfpapi-run/wf-training.json")); ANN = WF["metadata"]["annotations"]
RUN_ID = sys.argv[1]
DROP_K8S = "--no-kubernetes-config" in sys.argv  # see container_driver.py
OUT = f"/tmp/kfpapi-run/out-{RUN_ID}"
IN_CLUSTER = ["/tmp/kfpapi-run/in-cluster.sh", "/tmp/kfpapi-cluster", "42495"]
MLMD = ["--mlmd_server_address", "127.0.0.1", "--mlmd_server_port", "8081"]
ENV = dict(os.environ, ML_PIPELINE_SERVICE_HOST="127.0.0.1", ML_PIPELINE_SERVICE_PORT_GRPC="18887",
           METADATA_GRPC_SERVICE_HOST="127.0.0.1", METADATA_GRPC_SERVICE_PORT="8081",
           MINIO_SERVICE_SERVICE_HOST="127.0.0.1", MINIO_SERVICE_SERVICE_PORT="9000",
           PATH="/work/venv-kfpapi/bin:" + os.environ["PATH"])


def template(name):
    return [t for t in WF["spec"]["templates"] if t["name"] == name][0]


def params(template_name, task):
    t = [x for x in template(template_name)["dag"]["tasks"] if x["name"] == task][0]
    sub = lambda v: re.sub(r"\{\{workflow\.annotations\.([^}]+)\}\}", lambda m: ANN[m.group(1)], v)
    return {x["name"]: sub(x.get("value", "")) for x in t["arguments"]["parameters"]}


def run(what, args, env=ENV):
    started = time.monotonic()
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    fatal = [l for l in lines if l.startswith("F1") or "Error:" in l or l.startswith("Traceback")]
    print(f"{what}: rc={r.returncode} {time.monotonic() - started:.1f}s" + (f"  {fatal[-1][:400]}" if r.returncode else ""), flush=True)
    if r.returncode:
        print("\n".join(l[:400] for l in lines[-15:]))
        sys.exit(1)


def read(path):
    return open(path).read().strip() if os.path.exists(path) else ""


def dag_driver(kind, task_dir, parent, p):
    d = f"{OUT}/{task_dir}"; os.makedirs(d, exist_ok=True)
    args = [*IN_CLUSTER, "/tmp/kfpapi-bin/driver", "-logtostderr", "--type", kind, "--pipeline_name", "mlkeel-training",
            "--run_id", RUN_ID, "--component", p["component"], "--iteration_index", "-1",
            "--execution_id_path", f"{d}/execution-id", "--iteration_count_path", f"{d}/iteration-count",
            "--condition_path", f"{d}/condition", *MLMD]
    if kind == "ROOT_DAG":
        args += ["--runtime_config", p["runtime-config"]]
    else:
        args += ["--dag_execution_id", parent, "--task", p["task"]]
    run(f"{task_dir} driver ({kind})", args)
    return read(f"{d}/execution-id"), read(f"{d}/condition")


def container_task(template_name, task, parent):
    p = params(template_name, f"{task}-driver")
    d = f"{OUT}/{task}"; os.makedirs(d, exist_ok=True)
    k8s = "{}" if DROP_K8S else (p.get("kubernetes-config") or "{}")
    run(f"{task} driver", [*IN_CLUSTER, "/tmp/kfpapi-bin/driver", "-logtostderr", "--type", "CONTAINER",
        "--pipeline_name", "mlkeel-training", "--run_id", RUN_ID, "--dag_execution_id", parent, "--component", p["component"],
        "--task", p["task"], "--container", p["container"], "--iteration_index", "-1",
        "--cached_decision_path", f"{d}/cached-decision", "--pod_spec_patch_path", f"{d}/pod-spec-patch",
        "--condition_path", f"{d}/condition", "--kubernetes_config", k8s, *MLMD])
    if read(f"{d}/cached-decision") == "true":
        print(f"{task}: cached, not run"); return
    c = json.loads(read(f"{d}/pod-spec-patch"))["containers"][0]
    cmd = c["command"][c["command"].index("/kfp-launcher/launch") + 1:]
    subst = {"$(KFP_POD_NAME)": f"host-{task}", "$(KFP_POD_UID)": "host-uid",
             "$(METADATA_GRPC_SERVICE_HOST)": "127.0.0.1", "$(METADATA_GRPC_SERVICE_PORT)": "8081"}
    cmd = [subst.get(a, a) for a in cmd]
    run(f"{task} launcher", [*IN_CLUSTER, "/tmp/kfpapi-bin/launcher-v2", "-logtostderr", *cmd, *c["args"]])
    subprocess.run(["rm", "-rf", "/minio", "/tmp/kfp", "/tmp/kfp_outputs"])  # the launcher's local staging


entry = params("entrypoint", "root-driver")
root_id, _ = dag_driver("ROOT_DAG", "root", None, entry)
for task in ["ingest", "validate", "split", "train", "evaluate", "explain", "fairness", "gate"]:
    container_task("root", task, root_id)
cond_id, condition = dag_driver("DAG", "condition-1", root_id, params("root", "condition-1-driver"))
print(f"condition-1: condition={condition!r}")
if condition != "false":
    for task in ["register", "model-card"]:
        container_task("comp-condition-1", task, cond_id)
print("all tasks done")
