"""The Nebius cloud simulator's public images and projects: ``nebius.compute.v1.ImageService``
(``ListPublic``, ``GetLatestByFamily``) and ``nebius.iam.v1.ProjectService/Get`` (a project's region), served
by ``vmops.sim.nebius_cloud.NebiusCloudSim`` beside its other services.

Public images belong to a region; ``ListPublic`` needs the region (INVALID_ARGUMENT without one, as the official
proto marks it required) and pages like every List. ``GetLatestByFamily`` answers the newest READY image of a
family (any region's public images; a ``parent_id`` other than a public-images project finds nothing here:
NOT_FOUND). A boot disk created from a family that is not among the project region's READY public images is
NOT_FOUND, as at Nebius.

Scenario keys (``nebius:`` section): ``regions`` (``{project id: region}``, default ``eu-north1`` for every
project) and ``images`` (list of ``{family, version?, region?, platforms?, state?, cpu?}``; default
``PUBLIC_IMAGES``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import grpc

from vmops._gen.cloud.nebius.compute.v1 import image_pb2, image_service_pb2, image_service_pb2_grpc
from vmops._gen.cloud.nebius.iam.v1 import container_pb2, project_service_pb2, project_service_pb2_grpc

DEFAULT_REGION = "eu-north1"
_GPU = ("gpu-h100-sxm", "gpu-h200-sxm")
#: (family, version, region, recommended platforms, state); the families Nebius documents for GPU VMs
PUBLIC_IMAGES: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    ("ubuntu22.04-cuda12", "20261101", DEFAULT_REGION, _GPU, "READY"),
    ("ubuntu22.04-cuda12", "20261115", DEFAULT_REGION, _GPU, "READY"),
    ("ubuntu24.04-cuda12", "20261115", DEFAULT_REGION, _GPU, "READY"),
    ("ubuntu24.04-cuda13.0", "20261120", DEFAULT_REGION, ("gpu-h200-sxm",), "READY"),
    ("ubuntu24.04-cuda13.1", "20261130", DEFAULT_REGION, _GPU, "CREATING"),
    ("ubuntu22.04-driverless", "20261115", DEFAULT_REGION, (), "READY"),
    ("ubuntu22.04-cuda12", "20261115", "us-central1", _GPU, "READY"),
)
PUBLIC_PARENT = "project-e00public-images"

S = grpc.StatusCode


class Abort(Exception):
    """Raised by the handlers below; ``NebiusCloudSim.serve`` turns it into the call's status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _image(n: int, family: str, version: str, region: str, platforms: Iterable[str], state: str,
           cpu: str = "AMD64") -> image_pb2.Image:
    img = image_pb2.Image()
    img.metadata.id = f"computeimage-e00sim{n:014d}"
    img.metadata.parent_id = f"{PUBLIC_PARENT}-{region}"
    img.metadata.name = f"{family}-{version}"
    img.spec.image_family, img.spec.version = family, version
    img.spec.image_family_human_readable = family.replace("-", " ").title()
    img.spec.cpu_architecture = image_pb2.ImageSpec.CPUArchitecture.Value(cpu)
    img.spec.recommended_platforms.extend(platforms)
    img.status.state = image_pb2.ImageStatus.State.Value(state)
    return img


class PublicImages:
    """The public images of every region, and the region of every project."""

    def __init__(self, scenario: Mapping[str, Any], projects: Iterable[str]) -> None:
        raw = scenario.get("images")
        rows = ([(str(e["family"]), str(e.get("version", "1")), str(e.get("region", DEFAULT_REGION)),
                  tuple(e.get("platforms") or ()), str(e.get("state", "READY")), str(e.get("cpu", "AMD64")))
                 for e in raw] if raw is not None else [(*r, "AMD64") for r in PUBLIC_IMAGES])
        self.images = [_image(i, *row) for i, row in enumerate(rows)]
        regions = scenario.get("regions") or {}
        self.regions = {pid: str(regions.get(pid, DEFAULT_REGION)) for pid in projects}

    def ready_families(self, region: str) -> set[str]:
        return {i.spec.image_family for i in self.images
                if i.metadata.parent_id.endswith("-" + region) and i.status.state == image_pb2.ImageStatus.READY}

    def in_region(self, region: str) -> list[image_pb2.Image]:
        return [i for i in self.images if i.metadata.parent_id == f"{PUBLIC_PARENT}-{region}"]

    def latest(self, req: image_service_pb2.GetImageLatestByFamilyRequest) -> image_pb2.Image:
        found = [i for i in self.images if i.spec.image_family == req.image_family
                 and i.status.state == image_pb2.ImageStatus.READY
                 and (not req.parent_id or i.metadata.parent_id == req.parent_id)]
        if not req.image_family or not found:
            raise Abort(S.NOT_FOUND, f"image family {req.image_family!r} not found")
        return max(found, key=lambda i: i.spec.version)

    def project(self, req: project_service_pb2.GetProjectRequest) -> container_pb2.Container:
        region = self.regions.get(req.id)
        if region is None:
            raise Abort(S.PERMISSION_DENIED, f"Permission denied for {req.id}")
        c = container_pb2.Container()
        c.metadata.id, c.metadata.name = req.id, "default-project"
        c.spec.region = c.status.region = region
        return c


Serve = Callable[[str, grpc.ServicerContext, Callable[[Any], Any]], Any]


class ImagesServicer(image_service_pb2_grpc.ImageServiceServicer):
    """``ImageService`` through the simulator's ``serve`` (auth, faults, counters); ``page`` is its List pager."""

    def __init__(self, serve: Serve, images: Callable[[], PublicImages],
                 page: Callable[[list[Any], int, str], tuple[list[Any], str]]) -> None:
        self.serve, self.images, self.page = serve, images, page

    def ListPublic(self, request: Any, context: Any) -> Any:
        def answer(fx: Any) -> image_service_pb2.ListImagesResponse:
            if not request.region:
                raise Abort(S.INVALID_ARGUMENT, "region is required")
            items, token = self.page(self.images().in_region(request.region), request.page_size, request.page_token)
            return image_service_pb2.ListImagesResponse(items=items, next_page_token=token)

        return self.serve("ImageService/ListPublic", context, answer)

    def GetLatestByFamily(self, request: Any, context: Any) -> Any:
        return self.serve("ImageService/GetLatestByFamily", context, lambda fx: self.images().latest(request))


class ProjectsServicer(project_service_pb2_grpc.ProjectServiceServicer):
    def __init__(self, serve: Serve, images: Callable[[], PublicImages]) -> None:
        self.serve, self.images = serve, images

    def Get(self, request: Any, context: Any) -> Any:
        return self.serve("ProjectService/Get", context, lambda fx: self.images().project(request))
