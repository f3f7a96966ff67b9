from services.fake import serve as _serve


async def serve(settings, backend_name):  # type: ignore[no-untyped-def]
    await _serve(settings.backend(backend_name).address)
