"""Generator installations recognised from a listing of paths (no file is opened)."""

from __future__ import annotations

from safeguard.toolchain.installations import FileRef, Installation, find_installations
from tests.toolchain import layouts as L


def _one(tree: L.Tree) -> Installation:
    found = find_installations(L.listing(tree))
    assert len(found) == 1, found
    return found[0]


def _paths(refs: tuple[FileRef, ...]) -> list[str]:
    return [ref.path for ref in refs]


def test_automatic1111() -> None:
    inst = _one(L.a1111())
    root = "stable-diffusion-webui"
    assert (inst.generator, inst.root, inst.version) == ("AUTOMATIC1111", root, None)
    assert inst.markers == (f"{root}/webui.py", f"{root}/modules/", f"{root}/launch.py",
                            f"{root}/models/Stable-diffusion/", f"{root}/webui-user.bat")
    assert inst.model_dirs == (f"{root}/models/Lora", f"{root}/models/Stable-diffusion",
                               f"{root}/embeddings")
    assert inst.output_dirs == (f"{root}/outputs/img2img-images",
                                f"{root}/outputs/txt2img-images", f"{root}/log/images")
    assert _paths(inst.records) == [f"{root}/config.json", f"{root}/log/images/log.csv",
                                    f"{root}/params.txt", f"{root}/styles.csv",
                                    f"{root}/ui-config.json"]


def test_forge_and_sdnext_are_told_from_automatic1111() -> None:
    forge = _one(L.forge())
    assert (forge.generator, forge.markers[-1]) == (
        "Forge", "stable-diffusion-webui-forge/modules_forge/")
    assert _paths(forge.records) == ["stable-diffusion-webui-forge/params.txt"]
    sdnext = _one(L.sdnext())
    assert (sdnext.generator, sdnext.markers) == (
        "SD.Next", ("automatic/webui.py", "automatic/modules/", "automatic/installer.py"))
    assert sdnext.output_dirs == ("automatic/outputs/save", "automatic/outputs/text")
    assert _paths(sdnext.records) == ["automatic/outputs/save/log.csv"]


def test_comfyui_portable() -> None:
    inst = _one(L.comfyui())
    root = "ComfyUI_windows_portable/ComfyUI"
    assert (inst.generator, inst.root) == ("ComfyUI", root)
    assert inst.markers == (
        f"{root}/main.py", f"{root}/comfy/", f"{root}/nodes.py", f"{root}/comfy_extras/",
        f"{root}/custom_nodes/", f"{root}/user/default/comfy.settings.json",
        "ComfyUI_windows_portable/python_embeded/", "ComfyUI_windows_portable/run_cpu.bat",
        "ComfyUI_windows_portable/run_nvidia_gpu.bat")
    assert inst.model_dirs == (f"{root}/models/checkpoints", f"{root}/models/loras")
    assert inst.output_dirs == (f"{root}/output",)
    assert _paths(inst.records) == [f"{root}/user/default/comfy.settings.json",
                                    f"{root}/user/default/workflows/bicycle.json",
                                    f"{root}/user/default/workflows/coast/api.json"]


def test_comfyui_desktop_base_folder_is_known_by_its_user_folder() -> None:
    tree = {path: data for path, data in L.comfyui("Documents/ComfyUI", portable=False).items()
            if "/user/" in path or "/models/" in path}
    inst = _one(tree)
    assert (inst.generator, inst.root, inst.markers) == (
        "ComfyUI", "Documents/ComfyUI", ("Documents/ComfyUI/user/default/comfy.settings.json",))


def test_invokeai_with_its_version_from_the_venv() -> None:
    inst = _one(L.invokeai())
    assert (inst.generator, inst.root, inst.version) == ("InvokeAI", "invokeai", "4.2.9")
    assert inst.markers == ("invokeai/invokeai.yaml", "invokeai/databases/invokeai.db")
    assert inst.model_dirs == ("invokeai/models/sdxl",)
    assert inst.output_dirs == ("invokeai/outputs/images",)
    assert _paths(inst.records) == ["invokeai/databases/invokeai.db"]


def test_invokeai_2_with_its_dream_log() -> None:
    inst = _one({"old/invokeai.init": b"", "old/outputs/img-samples/invoke_log.txt": b"",
                 "old/outputs/img-samples/000001.1.png": b""})
    assert (inst.generator, inst.markers, inst.version) == ("InvokeAI", ("old/invokeai.init",),
                                                            None)
    assert inst.output_dirs == ("old/outputs",)
    assert _paths(inst.records) == ["old/outputs/img-samples/invoke_log.txt"]


def test_fooocus_is_not_taken_for_automatic1111() -> None:
    inst = _one(L.fooocus())
    assert (inst.generator, inst.markers) == (
        "Fooocus", ("Fooocus/fooocus_version.py", "Fooocus/entry_with_update.py"))
    assert inst.model_dirs == ("Fooocus/models/checkpoints", "Fooocus/models/loras")
    assert inst.output_dirs == ("Fooocus/outputs",)
    assert _paths(inst.records) == ["Fooocus/outputs/2024-05-20/log.html"]


def test_kohya_records_are_the_users_configs_not_its_code_or_examples() -> None:
    inst = _one(L.kohya())
    assert (inst.generator, inst.markers) == (
        "kohya_ss", ("kohya_ss/kohya_gui.py", "kohya_ss/sd-scripts/", "kohya_ss/gui.sh"))
    assert inst.output_dirs == ("kohya_ss/outputs",)
    assert _paths(inst.records) == ["kohya_ss/configs/bike_style.json",
                                    "kohya_ss/presets/lora/user_presets/my bikes.json"]


def test_nested_and_several_installations_each_reported_once() -> None:
    tree = {**L.a1111("p2/Users/a/stable-diffusion-webui"),
            **L.comfyui("p2/Users/a/stable-diffusion-webui/extensions/comfy/ComfyUI",
                        portable=False),
            **L.a1111("p2/Users/b/webui"), **L.invokeai("invokeai")}
    found = find_installations(L.listing(tree))
    assert [(i.generator, i.root) for i in found] == [
        ("InvokeAI", "invokeai"),
        ("AUTOMATIC1111", "p2/Users/a/stable-diffusion-webui"),
        ("ComfyUI", "p2/Users/a/stable-diffusion-webui/extensions/comfy/ComfyUI"),
        ("AUTOMATIC1111", "p2/Users/b/webui")]
    # the outer installation's records are its own
    assert all("/extensions/" not in ref.path for ref in found[1].records)


def test_lookups_ignore_case_and_installation_at_the_top() -> None:
    tree = {"WebUI.py": b"", "Modules/x.py": b"", "Launch.py": b"", "Params.txt": b""}
    inst = _one(tree)
    assert (inst.generator, inst.root, inst.markers) == (
        "AUTOMATIC1111", "", ("WebUI.py", "Modules/", "Launch.py"))
    assert _paths(inst.records) == ["Params.txt"]


def test_common_names_alone_are_no_installation() -> None:
    tree = {"project/main.py": b"", "project/comfy/readme.md": b"",  # no nodes.py / extras
            "tool/webui.py": b"", "tool/modules/x.py": b"",  # no launch.py / models
            "app/kohya_gui.py": b"", "photos/img.png": L.picture(1)}
    assert find_installations(L.listing(tree)) == []


def test_a_large_listing() -> None:
    tree: L.Tree = {f"Users/a/Pictures/{i // 100}/{i}.jpg": b"" for i in range(20_000)}
    tree.update(L.comfyui("Users/a/ComfyUI", portable=False))
    found = find_installations(L.listing(tree, sizes=False))
    assert [(i.generator, i.root) for i in found] == [("ComfyUI", "Users/a/ComfyUI")]
