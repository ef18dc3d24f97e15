"""Joins the EC2 instances of paved GPU pools (in LocalStack) to the local control plane as kwok
nodes: the local stand-in for the `paved-node-join` hook that the pool's user data calls on a
real instance. Each node carries exactly the labels and taints the pool's bootstrap wrote into
/etc/paved/node.json (read back from the launch template's user data), so workloads scheduled
onto a pool (nodeSelector paved.dev/pool-id, GPU toleration) land on that pool's nodes, and
nodes of terminated instances leave the cluster again.

    python node_joiner.py --kubeconfig KC [--kubectl BIN] [--endpoint URL] [--once] [--interval 1]
"""
import argparse
import base64
import json
import subprocess
import sys
import time

import boto3

JOINED_BY = "paved.dev/joined-by"
GPUS = {"g5.xlarge": 1, "g5.2xlarge": 1, "g5.4xlarge": 1, "g5.8xlarge": 1, "g5.12xlarge": 4, "g5.48xlarge": 8,
        "g6.xlarge": 1, "g6.2xlarge": 1, "g6.12xlarge": 4, "p4d.24xlarge": 8, "p5.48xlarge": 8}


def node_config(user_data: str):
    """The JSON between the node.json heredoc markers of paved's bootstrap script."""
    text = base64.b64decode(user_data).decode()
    start = text.index("<<'PAVED_NODE_EOF'\n") + len("<<'PAVED_NODE_EOF'\n")
    return json.loads(text[start:text.index("\nPAVED_NODE_EOF", start)])


def desired_nodes(ec2):
    configs = {}
    for lt in ec2.describe_launch_templates(Filters=[{"Name": "tag-key", "Values": ["paved:pool-id"]}])["LaunchTemplates"]:
        pool = next(t["Value"] for t in lt.get("Tags", []) if t["Key"] == "paved:pool-id")
        v = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"], Versions=["$Latest"])
        ud = v["LaunchTemplateVersions"][0]["LaunchTemplateData"].get("UserData")
        if ud:
            configs[pool] = node_config(ud)
    nodes = {}
    resp = ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["paved:pool-id"]},
                                           {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    for r in resp["Reservations"]:
        for i in r["Instances"]:
            pool = next(t["Value"] for t in i["Tags"] if t["Key"] == "paved:pool-id")
            if pool not in configs:
                continue
            cfg = configs[pool]
            gpus = str(GPUS.get(i["InstanceType"], 1))
            labels = dict(cfg["labels"], **{
                "kubernetes.io/hostname": i["InstanceId"], "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "type": "kwok", "node.kubernetes.io/instance-type": i["InstanceType"],
                "topology.kubernetes.io/zone": i["Placement"]["AvailabilityZone"], "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.count": gpus, JOINED_BY: "node-joiner"})
            nodes[i["InstanceId"]] = {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": i["InstanceId"], "labels": labels,
                             "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
                "spec": {"taints": cfg["taints"], "providerID": f"aws:///{i['Placement']['AvailabilityZone']}/{i['InstanceId']}"},
                "status": {"capacity": {"cpu": "8", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": gpus},
                           "allocatable": {"cpu": "7", "memory": "60Gi", "pods": "110", "nvidia.com/gpu": gpus}},
            }
    return nodes


def kubectl(args, kc, bin_, stdin=None):
    return subprocess.run([bin_, "--kubeconfig", kc, *args], input=stdin, capture_output=True, text=True, timeout=60)


def sync(ec2, kc, bin_):
    want = desired_nodes(ec2)
    p = kubectl(["get", "nodes", "-l", f"{JOINED_BY}=node-joiner", "-o", "json"], kc, bin_)
    have = {n["metadata"]["name"] for n in json.loads(p.stdout)["items"]} if p.returncode == 0 else set()
    for name, node in want.items():
        if name not in have:
            r = kubectl(["apply", "-f", "-"], kc, bin_, stdin=json.dumps(node))
            print(f"node-joiner: joined {name} ({node['metadata']['labels'].get('paved.dev/pool-id')}): {r.stdout.strip() or r.stderr.strip()}", file=sys.stderr)
    for name in have - set(want):
        kubectl(["delete", "node", name, "--wait=false"], kc, bin_)
        print(f"node-joiner: removed {name}", file=sys.stderr)
    return want


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--kubectl", default="kubectl")
    ap.add_argument("--endpoint", default="http://127.0.0.1:4566")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--once", action="store_true")
    ap.add_argument("--interval", type=float, default=1.0)
    a = ap.parse_args()
    ec2 = boto3.client("ec2", endpoint_url=a.endpoint, region_name=a.region,
                       aws_access_key_id="test", aws_secret_access_key="test")
    while True:
        try:
            sync(ec2, a.kubeconfig, a.kubectl)
        except Exception as e:  # keep joining while LocalStack or the API server restarts
            print(f"node-joiner: {e}", file=sys.stderr)
        if a.once:
            return
        time.sleep(a.interval)


if __name__ == "__main__":
    main()
