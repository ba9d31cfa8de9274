"""A simulated OpenNebula zone that pyone talks to over real XML-RPC (see core.Simulator)."""

from .core import Simulator
from .spec import CloudSpec, DiskSpec, HostSpec, VmSpec

__all__ = ["Simulator", "CloudSpec", "HostSpec", "VmSpec", "DiskSpec"]
