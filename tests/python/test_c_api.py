"""The C API: an extension that uses all twelve slots of greenlet._C_API
through greenlet.h, compiled against this package's header and against
Debian's greenlet 2.0 header, runs on this package."""
import os
import subprocess
import sys
import sysconfig

import pytest

import greenlet
from greenlet import GreenletExit, getcurrent

HERE = os.path.dirname(os.path.abspath(__file__))
HEADERS = {
    "ours": os.path.dirname(os.path.abspath(greenlet.__file__)),
    "debian-2.0": "/usr/lib/python3/dist-packages/greenlet",
}


def build_probe(header_directory, output_directory):
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    target = os.path.join(output_directory, "capi_probe" + suffix)
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror",
         "-I" + sysconfig.get_paths()["include"], "-I" + header_directory,
         os.path.join(HERE, "capi_probe.c"), "-o", target],
        check=True, timeout=120)
    return output_directory


@pytest.mark.parametrize("header", sorted(HEADERS))
def test_every_slot_of_the_c_api(header, tmp_path):
    assert os.path.exists(os.path.join(HEADERS[header], "greenlet.h"))
    sys.path.insert(0, build_probe(HEADERS[header], str(tmp_path)))
    try:
        sys.modules.pop("capi_probe", None)
        import capi_probe
        main = getcurrent()
        report = capi_probe.probe(lambda x: main.switch(x + 1))
    finally:
        sys.path.pop(0)
        sys.modules.pop("capi_probe", None)
    assert report == {
        "type_ok": True, "main": True, "started_before": False,
        "first": 21, "active": True, "parent_is_current": True,
        "set_parent": 0, "thrown_result_is_exit": True,
        "dead_after_throw": True, "error_is_exception": True,
        "basicsize": greenlet.greenlet.__basicsize__,
    }
    assert issubclass(GreenletExit, BaseException)


@pytest.mark.parametrize("header", sorted(HEADERS))
def test_the_c_api_treats_edges_as_upstream(header, tmp_path):
    sys.path.insert(0, build_probe(HEADERS[header], str(tmp_path)))
    try:
        sys.modules.pop("capi_probe", None)
        import capi_probe
        report = capi_probe.edges(42)
        main = getcurrent()
        echo = greenlet.greenlet(lambda *a, **k: main.switch(a, k))
        echo.switch()
        ignored = capi_probe.switch_with(echo, [("not", "a dict")])
        given = capi_probe.switch_with(echo, {"k": 2})
    finally:
        sys.path.pop(0)
        sys.modules.pop("capi_probe", None)
    assert report == dict.fromkeys([
        "parent_of_main_is_null_without_error", "switch", "throw", "main",
        "started", "active", "get_parent",
        "switch_without_run_is_attribute_error",
        "set_parent_null_is_attribute_error"], True)
    assert ignored == 1              # not a dict: no keywords
    assert given == ((1,), {"k": 2})


def test_throw_through_the_c_api_checks_its_arguments():
    import ctypes
    api = ctypes.pythonapi
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    slots = ctypes.cast(api.PyCapsule_GetPointer(greenlet._C_API,
                                                 b"greenlet._C_API"),
                        ctypes.POINTER(ctypes.c_void_p))
    throw = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object,
                              ctypes.py_object, ctypes.c_void_p,
                              ctypes.c_void_p)(slots[5])
    main = getcurrent()

    def catcher():
        try:
            main.switch()
        except ValueError as caught:
            return caught

    g = greenlet.greenlet(catcher)
    g.switch()
    instance = ValueError("an instance as the type")
    assert throw(g, instance, None, None) is instance
    g2 = greenlet.greenlet(catcher)
    g2.switch()
    with pytest.raises(TypeError):
        throw(g2, 42, None, None)
    assert not g2.dead
    g2.switch()
