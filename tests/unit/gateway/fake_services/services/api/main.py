from services.fake import serve as _serve


async def serve(settings, replica=0):  # type: ignore[no-untyped-def]
    await _serve(settings.api.address(replica), with_volumes=True)
