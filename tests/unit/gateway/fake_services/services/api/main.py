from services.fake import serve as _serve


async def serve(settings):  # type: ignore[no-untyped-def]
    await _serve(f"{settings.api.host}:{settings.api.port}", with_volumes=True)
