"""``@hosted``: an app factory that knows how to host itself.

::

    @hosted(port=0)
    def create_app():
        app = Flask(__name__)
        ...
        return app

    create_app()                      # still the plain factory: returns the app
    host = create_app.start()         # a started FlaskHost
    with create_app.host(port=8080) as host: ...

The child process has to rebuild the factory. How it gets there depends on
where the factory lives (see :meth:`HostedFactory.__pyhost_target__`):

- defined at module level in an importable module: the child imports it by
  name (``"module:create_app()"``), like any string target. Pickling the raw
  function by reference would fail here, because the module attribute is this
  wrapper, not the function.
- defined in ``__main__``, a notebook cell or a function body (a closure): the
  child cannot import it by name, so the function is shipped by value with
  cloudpickle, together with the variables it closes over.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import linecache
import logging
import os
import threading
import weakref
from typing import Any, Callable, Dict, Optional, Union

from .config import HostConfig
from .errors import PortInUse
from .host import FlaskHost
from .status import HostState
from .targets import named_by_qualname

__all__ = ["hosted", "HostedFactory"]

#: FlaskHost keyword arguments that are not HostConfig fields.
_HOST_ARGS = ("name", "on_event")
_FIELDS = tuple(field.name for field in dataclasses.fields(HostConfig))

log = logging.getLogger("pyhost")

#: The host the latest ``start()`` of each factory (by target label) returned.
_started: "weakref.WeakValueDictionary[str, FlaskHost]" = weakref.WeakValueDictionary()
_started_lock = threading.Lock()


class HostedFactory:
    """A zero-argument app factory plus the ``HostConfig`` fields to host it with.

    Calling it calls the factory. ``host(**overrides)`` returns an unstarted
    :class:`FlaskHost`, ``start(**overrides)`` a started one.
    """

    def __init__(self, factory: Callable[[], Any], *, config: Optional[HostConfig] = None,
                 **fields: Any) -> None:
        _check_factory(factory)
        functools.update_wrapper(self, factory)
        self.factory = factory
        self.config = config
        # Decoration time is the right moment to learn that port=70000 is wrong.
        self.fields = _check_fields(fields, config, "hosted(%s)" % _describe(factory))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.factory(*args, **kwargs)

    def host(self, **overrides: Any) -> FlaskHost:
        """An unstarted ``FlaskHost`` for this factory; ``overrides`` replace decorator fields."""
        return self._host(overrides, "host")

    def _host(self, overrides: Dict[str, Any], method: str) -> FlaskHost:
        fields = dict(self.fields)
        where = "%s.%s()" % (_describe(self.factory), method)
        fields.update(_check_fields(overrides, self.config, where))
        return FlaskHost(self, config=self.config, **fields)

    def start(self, **overrides: Any) -> FlaskHost:
        """Start a ``FlaskHost`` for this factory and block until it is ready.

        One host per factory: a host that an earlier ``start()`` of the same
        factory (same name, e.g. a notebook cell run again) left running, or
        that gave up, is replaced, and with ``port=0`` the new one takes over
        its port, so the URL stays the same. For several independent hosts use
        ``host().start()``.
        """
        host = self._host(overrides, "start")
        label = str(host.target_label)
        with _started_lock:
            previous = _started.get(label)
        if previous is not None and previous.state is HostState.FAILED:
            # It gave up and left the registry, which hands over running hosts
            # only: stop() closes what is left of it, and its port is reused.
            previous.stop()
            if host.config.port == 0 and previous.port \
                    and previous.config.host == host.config.host:
                try:
                    return self._remember(label, self._replacing(
                        dict(overrides, port=previous.port)).start())
                except PortInUse:
                    pass  # something else took the port in between: any port will do
        # A running host of this factory is replaced by the registry, on any
        # port, and with port=0 the new host takes over its port.
        return self._remember(label, self._replacing(overrides).start())

    def _replacing(self, overrides: Dict[str, Any]) -> FlaskHost:
        host = self._host(overrides, "start")
        host.replaces_same_target = True
        return host

    @staticmethod
    def _remember(label: str, host: FlaskHost) -> FlaskHost:
        with _started_lock:
            _started[label] = host
        return host

    def __pyhost_target__(self) -> Union[str, Callable[[], Any]]:
        """What ``parse_target`` should ship: a ``'module:name()'`` string or the function.

        Called at ``start()``, so a factory redefined in a notebook cell ships
        its current code.
        """
        name = self._import_name()
        if name is not None:
            return "%s:%s()" % (self.__module__, name)
        if _resolves_to(self.factory):
            return self.factory  # e.g. hosted(module.create_app): pickled by reference
        return with_source(self.factory)

    def _import_name(self) -> Optional[str]:
        """The qualified name under which the child can import this very wrapper, if any."""
        return getattr(self, "__qualname__", None) if _resolves_to(self) else None

    def __reduce__(self) -> Any:
        # By name when importable (what pickle does for functions); otherwise
        # rebuild from the factory, which cloudpickle then ships by value.
        name = self._import_name()
        if name is not None:
            return name
        return (_rebuild, (self.factory, self.config, self.fields))

    def __repr__(self) -> str:
        fields = ", ".join("%s=%r" % item for item in self.fields.items())
        return "<hosted %s(%s)>" % (_describe(self.factory), fields)


def _resolves_to(obj: Any) -> bool:
    """True if ``module.qualname`` names ``obj`` itself, so the child can import it."""
    # __main__ differs between parent and child (a notebook has no file to
    # re-import; another interpreter runs pyhost's bootstrap as __main__).
    return getattr(obj, "__module__", None) != "__main__" and named_by_qualname(obj)


def with_source(function: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap a factory shipped by value so that tracebacks in the child show its source.

    cloudpickle renames the code's file to ``<dynamic-code>``, and the child
    cannot read a notebook cell from disk anyway: the wrapper puts the file
    name back and hands the cell's lines to ``linecache``, so an error in the
    factory reads ``File ".../ipykernel_.../123.py", line 3`` with that line.
    The wrapper is a closure over plain data, so it travels by value too and
    needs nothing from pyhost in the child.
    """
    code = getattr(function, "__code__", None)
    if code is None:
        return function
    filename = code.co_filename
    lines = None if os.path.isfile(filename) else (linecache.getlines(filename) or None)

    def pyhost_shipped_factory() -> Any:  # runs in the child; its frame is named so
        import linecache
        import types

        def relabel(code: types.CodeType) -> types.CodeType:
            consts = tuple(relabel(const) if isinstance(const, types.CodeType) else const
                           for const in code.co_consts)
            return code.replace(co_filename=filename, co_consts=consts)

        function.__code__ = relabel(function.__code__)
        if lines:
            linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
        return function()

    # The label (and so the re-run hand-over) is the factory's own name.
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(pyhost_shipped_factory, attr, getattr(function, attr, None))
    pyhost_shipped_factory.__pyhost_shipped__ = function  # type: ignore[attr-defined]
    return pyhost_shipped_factory


def _rebuild(factory: Callable[[], Any], config: Optional[HostConfig],
             fields: Dict[str, Any]) -> HostedFactory:
    return HostedFactory(factory, config=config, **fields)


def hosted(factory: Optional[Callable[[], Any]] = None, *, config: Optional[HostConfig] = None,
           **fields: Any) -> Any:
    """Decorate a zero-argument app factory so it can host itself.

    ``@hosted`` or ``@hosted(port=0, health_path="/health")``: the keyword
    arguments are ``HostConfig`` fields (plus ``name`` and ``on_event``, as for
    ``FlaskHost``), checked now. The decorated factory still returns the app
    when called; ``.host(**overrides)`` returns an unstarted ``FlaskHost``,
    ``.start(**overrides)`` a started one.
    """
    if factory is not None:
        return HostedFactory(factory, config=config, **fields)

    def decorate(function: Callable[[], Any]) -> HostedFactory:
        return HostedFactory(function, config=config, **fields)

    # Validate at once, so even a decorator that is never applied reports bad fields.
    _check_fields(fields, config, "hosted()")
    return decorate


def _check_factory(factory: Any) -> None:
    if isinstance(factory, HostedFactory):
        return
    if hasattr(factory, "wsgi_app") or isinstance(factory, str):
        raise ValueError(
            "hosted: expected an app factory (a function returning the app), got %r. Wrap "
            "the app in a function, or host it directly: FlaskHost('module:app')" % (factory,))
    if not callable(factory):
        raise ValueError("hosted: expected an app factory (a zero-argument function "
                         "returning a WSGI app), got %r" % (factory,))
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # builtins and some callables have no signature: let the child try
    required = [p.name for p in signature.parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                       p.POSITIONAL_OR_KEYWORD,
                                                       p.KEYWORD_ONLY)]
    if required:
        raise ValueError(
            "hosted: %s requires argument(s) %s, but the child calls the factory with none. "
            "Give them defaults, or decorate functools.partial(%s, %s=...)"
            % (_describe(factory), ", ".join(repr(n) for n in required),
               getattr(factory, "__name__", "factory"), required[0]))


def _check_fields(fields: Dict[str, Any], config: Optional[HostConfig], where: str
                  ) -> Dict[str, Any]:
    unknown = sorted(set(fields) - set(_FIELDS) - set(_HOST_ARGS))
    if unknown:
        # A TypeError, as Python raises for any call (and FlaskHost(prot=1) does).
        raise TypeError("%s got an unexpected keyword argument %s; HostConfig fields are: %s"
                        % (where, ", ".join(repr(n) for n in unknown), ", ".join(_FIELDS)))
    config_fields = {k: v for k, v in fields.items() if k in _FIELDS}
    if config_fields:
        (config or HostConfig()).replace(**config_fields)  # raises ValueError naming the field
    return dict(fields)


def _describe(factory: Any) -> str:
    module = getattr(factory, "__module__", None)
    name = getattr(factory, "__qualname__", None) or getattr(factory, "__name__", None)
    if name is None:
        return repr(factory)
    return "%s.%s" % (module, name) if module else name
