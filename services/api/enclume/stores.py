"""The API process's image store, its uploads, and how store errors answer over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request

from services.common.exceptions import Conflict, EnclumeError, Invalid, NotFound
from services.images.errors import StoreError, StoreFull, UnknownVersion, VersionExists
from services.images.manifest import ManifestError
from services.images.store import ImageStore
from services.images.uploads import UnknownUpload, UploadConflict, Uploads

INSUFFICIENT_STORAGE = 507
_OPENING = threading.Lock()


def image_store(request: Request) -> ImageStore:
    """Made at first use: an API that never touches the store creates no directory."""
    state = request.app.state
    with _OPENING:
        if getattr(state, "image_store", None) is None:
            settings = state.settings
            state.image_store = ImageStore(settings.effective_image_store_dir,
                                           settings.image_store_max_bytes)
        return state.image_store  # type: ignore[no-any-return]


def uploads(request: Request) -> Uploads:
    state = request.app.state
    store = image_store(request)
    with _OPENING:
        if getattr(state, "image_uploads", None) is None:
            state.image_uploads = Uploads(store, state.settings.image_upload_timeout_s)
        return state.image_uploads  # type: ignore[no-any-return]


@contextmanager
def store_errors() -> Iterator[None]:
    """The store's refusals as API errors: 507 full, 404 unknown, 409 conflicts, else 400."""
    try:
        yield
    except StoreFull as exc:
        raise EnclumeError(str(exc), INSUFFICIENT_STORAGE) from None
    except (UnknownUpload, UnknownVersion) as exc:
        raise NotFound(str(exc)) from None
    except (UploadConflict, VersionExists) as exc:
        raise Conflict(str(exc)) from None
    except (StoreError, ManifestError) as exc:
        raise Invalid(str(exc)) from None
