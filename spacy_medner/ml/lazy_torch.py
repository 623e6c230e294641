"""Thinc wrapping for torch modules whose sizes are only known at `initialize`.

The trap this avoids: thinc restores a saved model by loading each shim's
state dict into the torch module that *already exists*. A torch head built
late (its input width comes from a transformer, its output from the label
set) does not exist yet in a freshly constructed pipeline, so the load either
fails on shapes or silently keeps random weights.

Here every lazy module has `build(**sizes)` and a `sizes` dict. The shim
saves `sizes` beside the state dict and rebuilds the module from them before
loading the weights, so `from_bytes`/`from_disk` never depend on
`initialize` having run.

The shim also lets parameter averages reach the module. thinc's optimizer
stores a torch parameter's moving average under the key (shim.id, name), but
`PyTorchShim.use_params` only looks for "pytorch_{id}_{name}" keys (thinc
8.3), so `use_averages = true` averaged the thinc tables and silently left
every torch weight raw in evaluation and in the saved pipeline. Torch layers
wrapped by other shims (thinc's own, spacy-transformers' HFShim) keep that
gap; `shims_missing_averages` finds them so a pipeline can say so.
"""
import contextlib
from io import BytesIO
from typing import Any, Callable, Dict, Iterator, List, Optional

import srsly
import torch
from thinc.api import Model, PyTorchShim, xp2torch


def serialize_lazy_module(module: torch.nn.Module) -> bytes:
    buffer = BytesIO()
    torch.save(module.state_dict(), buffer)
    return srsly.msgpack_dumps({"sizes": module.sizes, "state": buffer.getvalue()})


def deserialize_lazy_module(module: torch.nn.Module, data: bytes, device: "torch.device") -> torch.nn.Module:
    msg = srsly.msgpack_loads(data)
    if msg["sizes"] is not None and msg["sizes"] != module.sizes:
        if module.sizes is not None:
            raise ValueError(
                f"[spacy_medner] Cannot load weights built with sizes {msg['sizes']} into "
                f"a {type(module).__name__} already built with {module.sizes}."
            )
        module.build(**msg["sizes"])
    state = torch.load(BytesIO(msg["state"]), map_location=device, weights_only=True)
    module.load_state_dict(state)
    module.to(device)
    return module


class LazyTorchShim(PyTorchShim):
    @property
    def module(self) -> torch.nn.Module:
        """The wrapped torch module, for the layer that owns this shim."""
        return self._model

    @contextlib.contextmanager
    def use_params(self, params: Dict) -> Iterator[None]:
        """Swap in the optimizer's averages for the block (spaCy evaluates and
        saves inside it), then put the trained weights back exactly."""
        averaged = {
            name: params[(self.id, name)]
            for name, _ in self._model.named_parameters()
            if (self.id, name) in params
        }
        if not averaged:
            with super().use_params(params):
                yield
            return
        trained = {name: tensor.detach().clone() for name, tensor in self._model.named_parameters() if name in averaged}
        with torch.no_grad():
            for name, tensor in self._model.named_parameters():
                if name in averaged:
                    tensor.copy_(xp2torch(averaged[name], device=tensor.device))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, tensor in self._model.named_parameters():
                    if name in trained:
                        tensor.copy_(trained[name])


def shims_missing_averages(model: Model) -> List[PyTorchShim]:
    """The torch shims under `model` whose `use_params` cannot find the
    optimizer's averages, so `use_averages = true` leaves their weights raw."""
    return [
        shim
        for node in model.walk()
        for shim in node.shims
        if isinstance(shim, PyTorchShim) and not isinstance(shim, LazyTorchShim)
    ]


def lazy_torch_shim(module: torch.nn.Module) -> PyTorchShim:
    return LazyTorchShim(
        module,
        serialize_model=serialize_lazy_module,
        deserialize_model=deserialize_lazy_module,
    )


def torch_module(model: Model) -> torch.nn.Module:
    """The torch module of a layer made by `LazyTorchLayer` (or `TagDecoder`)."""
    return model.shims[0].module


def build_torch_module(model: Model, **sizes: int) -> None:
    """Build the wrapped module (once) and put it on the shim's device."""
    module = torch_module(model)
    if module.sizes is None:
        module.build(**sizes)
    elif module.sizes != sizes:
        raise ValueError(
            f"[spacy_medner] {model.name} was built with {module.sizes}; "
            f"cannot re-initialize it with {sizes}."
        )
    module.to(model.shims[0].device)


def LazyTorchLayer(
    name: str,
    module: torch.nn.Module,
    forward: Callable,
    init: Optional[Callable] = None,
    dims: Optional[Dict[str, Optional[int]]] = None,
    attrs: Optional[Dict[str, Any]] = None,
) -> Model:
    return Model(
        name,
        forward,
        init=init,
        dims=dims or {},
        attrs=attrs or {},
        shims=[lazy_torch_shim(module)],
    )
