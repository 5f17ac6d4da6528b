"""Run the KFP v2 launcher on the host for the task whose driver wrote out/<task>/pod-spec-patch, as the pod would."""
import json, os, subprocess, sys
task = sys.argv[1]
c = json.load(open(f"/tmp/kfpapi-run/out/{task}/pod-spec-patch"))["containers"][0]
cmd = c["command"][c["command"].index("/kfp-launcher/launch") + 1:]  # drop argoexec emissary and the launcher path
env = dict(os.environ, KFP_POD_NAME=f"host-{task}", KFP_POD_UID="host-uid", METADATA_GRPC_SERVICE_HOST="127.0.0.1",
           METADATA_GRPC_SERVICE_PORT="8081", MINIO_SERVICE_SERVICE_HOST="127.0.0.1", MINIO_SERVICE_SERVICE_PORT="9000",
           ML_PIPELINE_SERVICE_HOST="127.0.0.1", ML_PIPELINE_SERVICE_PORT_GRPC="18887",
           PATH="/work/venv-kfpapi/bin:" + os.environ["PATH"])
cmd = [a.replace("$(KFP_POD_NAME)", env["KFP_POD_NAME"]).replace("$(KFP_POD_UID)", "host-uid")
       .replace("$(METADATA_GRPC_SERVICE_HOST)", "127.0.0.1").replace("$(METADATA_GRPC_SERVICE_PORT)", "8081") for a in cmd]
args = ["/tmp/kfpapi-run/in-cluster.sh", "/tmp/kfpapi-cluster", "42495", "/tmp/kfpapi-bin/launcher-v2", "-logtostderr", *cmd, *c["args"]]
r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
print("rc", r.returncode)
lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
print("\n".join(l[:400] for l in lines[-30:]))
