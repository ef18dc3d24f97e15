"""The local Compute API's seeded catalog: regions, zones, machine types, accelerator
types and public images.

Machine-type shapes (vCPUs, memory, built-in GPUs) follow Google's published machine
families (docs.cloud.google.com/compute/docs/gpus and /accelerator-optimized-machines).
Which zone offers which GPU is a plausible *model*, not Google's live availability: tests
rely on the differences (e.g. no L4 in us-central1-f, H100 only in three zones), never on
the real map.
"""

from __future__ import annotations

REGIONS: dict[str, list[str]] = {
    "us-central1": ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"],
    "us-east1": ["us-east1-b", "us-east1-c", "us-east1-d"],
    "europe-west4": ["europe-west4-a", "europe-west4-b", "europe-west4-c"],
}

ZONE_REGION = {z: r for r, zs in REGIONS.items() for z in zs}

# accelerator type -> (description, maximumCardsPerInstance, zones offering it,
#                      regional quota metric)
ACCELERATORS: dict[str, tuple[str, int, list[str], str]] = {
    "nvidia-tesla-t4": (
        "NVIDIA T4",
        4,
        ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "us-east1-c", "us-east1-d",
         "europe-west4-a", "europe-west4-b", "europe-west4-c"],
        "NVIDIA_T4_GPUS",
    ),
    "nvidia-tesla-v100": (
        "NVIDIA V100",
        8,
        ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "europe-west4-a", "europe-west4-b",
         "europe-west4-c"],
        "NVIDIA_V100_GPUS",
    ),
    "nvidia-l4": (
        "NVIDIA L4",
        8,
        ["us-central1-a", "us-central1-b", "us-central1-c", "us-east1-b", "us-east1-c", "us-east1-d",
         "europe-west4-a", "europe-west4-b", "europe-west4-c"],
        "NVIDIA_L4_GPUS",
    ),
    "nvidia-tesla-a100": (
        "NVIDIA A100 40GB",
        16,
        ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "us-east1-b", "europe-west4-a",
         "europe-west4-b"],
        "NVIDIA_A100_GPUS",
    ),
    "nvidia-a100-80gb": (
        "NVIDIA A100 80GB",
        8,
        ["us-central1-a", "us-central1-c", "us-east1-b", "europe-west4-a"],
        "NVIDIA_A100_80GB_GPUS",
    ),
    "nvidia-h100-80gb": (
        "NVIDIA H100 80GB",
        8,
        ["us-central1-a", "us-central1-b", "us-central1-c", "europe-west4-b", "europe-west4-c"],
        "NVIDIA_H100_GPUS",
    ),
}

ALL_ZONES = [z for zs in REGIONS.values() for z in zs]


def _mt(cpus: int, mem_gb: float, gpu: str | None = None, count: int = 0) -> dict:
    return {"guestCpus": cpus, "memoryMb": int(mem_gb * 1024), "gpu": gpu, "gpuCount": count}


# machine type -> shape. "gpu" set = the GPUs are built in (A2/A3/G2); N1 takes
# guestAccelerators instead.
MACHINE_TYPES: dict[str, dict] = {}
for n in (1, 2, 4, 8, 16, 32, 64, 96):
    MACHINE_TYPES[f"n1-standard-{n}"] = _mt(n, n * 3.75)
for n in (2, 4, 8, 16):
    MACHINE_TYPES[f"e2-standard-{n}"] = _mt(n, n * 4)
for n, gpus in ((4, 1), (8, 1), (12, 1), (16, 1), (24, 2), (32, 1), (48, 4), (96, 8)):
    MACHINE_TYPES[f"g2-standard-{n}"] = _mt(n, n * 4, "nvidia-l4", gpus)
for g in (1, 2, 4, 8):
    MACHINE_TYPES[f"a2-highgpu-{g}g"] = _mt(12 * g, 85 * g, "nvidia-tesla-a100", g)
    MACHINE_TYPES[f"a2-ultragpu-{g}g"] = _mt(12 * g, 170 * g, "nvidia-a100-80gb", g)
    MACHINE_TYPES[f"a3-highgpu-{g}g"] = _mt(26 * g, 234 * g, "nvidia-h100-80gb", g)
MACHINE_TYPES["a2-megagpu-16g"] = _mt(96, 1360, "nvidia-tesla-a100", 16)


def machine_type_zones(name: str) -> list[str]:
    """Zones that offer a machine type: everywhere for N1/E2, where its GPU is for the rest."""
    mt = MACHINE_TYPES[name]
    if mt["gpu"] is None:
        return list(ALL_ZONES)
    return list(ACCELERATORS[mt["gpu"]][2])


def accelerator_zones(name: str) -> list[str]:
    return list(ACCELERATORS[name][2])


# N1 guestAccelerators: which accelerator types N1 accepts.
N1_ACCELERATORS = {"nvidia-tesla-t4", "nvidia-tesla-v100"}

# Public images: project -> list of images (newest last in each family).
IMAGES: dict[str, list[dict]] = {
    "debian-cloud": [
        {"name": "debian-12-bookworm-v20261111", "family": "debian-12", "diskSizeGb": "10",
         "description": "Debian, Debian GNU/Linux, 12 (bookworm), amd64 built on 20261111"},
        {"name": "debian-11-bullseye-v20261111", "family": "debian-11", "diskSizeGb": "10",
         "description": "Debian, Debian GNU/Linux, 11 (bullseye), amd64 built on 20261111"},
    ],
    "ubuntu-os-accelerator-images": [
        {"name": "ubuntu-accelerator-2204-amd64-with-nvidia-570-v20261105",
         "family": "ubuntu-accelerator-2204-amd64-with-nvidia-570", "diskSizeGb": "30",
         "description": "Canonical, Ubuntu, 22.04 LTS, amd64 with NVIDIA 570 driver"},
    ],
    "deeplearning-platform-release": [
        {"name": "common-cu128-ubuntu-2204-nvidia-570-v20261101", "family": "common-cu128-ubuntu-2204-nvidia-570",
         "diskSizeGb": "50", "description": "Deep Learning VM with CUDA 12.8 and NVIDIA driver 570"},
    ],
}
