"""Drives the official `twilio` helper library for Python against a
Colloquy server, through the seed's flows: create a conversation; add a
chat and an SMS participant; post messages with media (uploaded over plain
HTTP to the media endpoint, then attached by `media_sid`); page through the
messages; advance a read horizon and read the unread count.

The only change from talking to Twilio is the base URL:
`client.conversations.base_url = COLLOQUY_BASE`.

Environment: COLLOQUY_BASE (http://127.0.0.1:PORT), COLLOQUY_ACCOUNT_SID,
COLLOQUY_AUTH_TOKEN, COLLOQUY_SERVICE_SID. Exits non-zero with a message
naming the first mismatch.
"""

import base64
import json
import os
import sys
import urllib.request

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

BASE = os.environ["COLLOQUY_BASE"]
ACCOUNT_SID = os.environ["COLLOQUY_ACCOUNT_SID"]
AUTH_TOKEN = os.environ["COLLOQUY_AUTH_TOKEN"]
SERVICE_SID = os.environ["COLLOQUY_SERVICE_SID"]
# Every plain HTTP request's deadline, in seconds.
HTTP_TIMEOUT_SECONDS = 20
MESSAGES = 7
PAGE_SIZE = 3


def check(cond, what):
    if not cond:
        print(f"MISMATCH: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def http(method, path, body=None, content_type=None):
    auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    req = urllib.request.Request(BASE + path, data=body, method=method)
    req.add_header("Authorization", f"Basic {auth}")
    if content_type:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_SECONDS) as resp:
        return resp.status, resp.headers.get("Content-Type"), resp.read()


def upload(data, content_type, filename):
    status, _, body = http(
        "POST",
        f"/v1/Services/{SERVICE_SID}/Media?Filename={filename}",
        data,
        content_type,
    )
    check(status == 201, f"media upload {filename} answered 201 (got {status})")
    return json.loads(body)["sid"]


def main():
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.conversations.base_url = BASE
    api = client.conversations.v1

    # Create a conversation.
    conv = api.conversations.create(friendly_name="Seed flow", unique_name="seed-flow")
    check(conv.sid.startswith("CH"), f"conversation SID {conv.sid}")
    check(conv.chat_service_sid == SERVICE_SID, "conversation in the default service")
    check(api.conversations("seed-flow").fetch().sid == conv.sid, "fetch by unique name")

    # Add a chat participant and an SMS participant.
    alice = api.conversations(conv.sid).participants.create(identity="alice")
    check(alice.identity == "alice" and alice.sid.startswith("MB"), "chat participant")
    sms = api.conversations(conv.sid).participants.create(
        messaging_binding_address="+15551230001",
        messaging_binding_proxy_address="+15559870000",
    )
    binding = sms.messaging_binding or {}
    check(
        binding.get("type") == "sms" and binding.get("address") == "+15551230001",
        f"SMS participant binding {binding}",
    )
    listed = api.conversations(conv.sid).participants.list()
    check(len(listed) == 2, f"two participants listed (got {len(listed)})")

    # Post messages with media.
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    pdf = b"%PDF-1.4\n" + b"x" * 2000
    png_sid = upload(png, "image/png", "seed.png")
    pdf_sid = upload(pdf, "application/pdf", "seed.pdf")
    msgs = api.conversations(conv.sid).messages
    with_media = msgs.create(author="alice", body="a picture", media_sid=png_sid)
    media = with_media.media or []
    check(
        len(media) == 1
        and media[0]["sid"] == png_sid
        and media[0]["content_type"] == "image/png"
        and media[0]["size"] == len(png)
        and media[0]["filename"] == "seed.png",
        f"message media descriptor {media}",
    )
    check(with_media.participant_sid == alice.sid, "author resolved to the participant")
    two = msgs.create(author="alice", media_sid=[png_sid, pdf_sid])
    check(
        [m["sid"] for m in (two.media or [])] == [png_sid, pdf_sid],
        "two media items, in order",
    )
    status, ctype, content = http(
        "GET", f"/v1/Services/{SERVICE_SID}/Media/{png_sid}/Content"
    )
    check(status == 200 and ctype == "image/png" and content == png, "media content served back")
    for i in range(MESSAGES - 2):
        msgs.create(author="alice", body=f"text {i}")

    # Page through the messages: several pages of PAGE_SIZE.
    page = msgs.page(page_size=PAGE_SIZE)
    next_url = page.next_page_url
    check(len(list(page)) == PAGE_SIZE and next_url, "first page is full and has a next")
    check(next_url.startswith(BASE), f"next_page_url points at this server ({next_url})")
    all_asc = msgs.list(page_size=PAGE_SIZE)
    check(
        [m.index for m in all_asc] == list(range(MESSAGES)),
        f"list() walks every page in order (got {[m.index for m in all_asc]})",
    )
    all_desc = list(msgs.stream(order="desc", page_size=PAGE_SIZE))
    check(
        [m.index for m in all_desc] == list(reversed(range(MESSAGES))),
        "stream(order=desc) walks newest first",
    )
    limited = msgs.list(limit=4, page_size=PAGE_SIZE)
    check(len(limited) == 4, "limit across pages")
    edited = msgs(all_asc[2].sid).update(body="edited")
    check(edited.body == "edited" and edited.index == 2, "message edited")

    # Advance the read horizon and read the unread count.
    horizon = 3
    updated = api.conversations(conv.sid).participants(alice.sid).update(
        last_read_message_index=horizon
    )
    check(updated.last_read_message_index == horizon, "read horizon advanced")
    fetched = api.conversations(conv.sid).participants(alice.sid).fetch()
    check(fetched.last_read_message_index == horizon, "read horizon persisted")
    expected_unread = sum(1 for m in all_asc if m.index > horizon)
    try:
        uc = api.users("alice").user_conversations(conv.sid).fetch()
        check(
            uc.unread_messages_count == expected_unread,
            f"User Conversations unread_messages_count == {expected_unread} "
            f"(got {uc.unread_messages_count})",
        )
    except TwilioRestException as e:
        # Only the router's answer for a path it does not serve (its
        # message names the path) means "not built"; any other error is a
        # failure of the User Conversations resource itself.
        if e.status != 404 or "/v1/Users/" not in str(e.msg):
            raise
        print(
            "note: this build serves no User Conversations; the unread count is "
            "read from the participant's horizon and the message list"
        )
        unread = sum(
            1 for m in msgs.list(page_size=PAGE_SIZE) if m.index > fetched.last_read_message_index
        )
        check(unread == expected_unread, f"unread count {unread} == {expected_unread}")

    # Twilio's errors come back as Twilio's exceptions.
    try:
        api.conversations("CH00000000000000000000000000000000").fetch()
        check(False, "an unknown conversation raises")
    except TwilioRestException as e:
        check(e.status == 404 and e.code == 20404, f"404 with code 20404 (got {e.status} {e.code})")

    # Delete a message: its index is not reused.
    msgs(all_asc[0].sid).delete()
    after = msgs.create(body="after the delete")
    check(after.index == MESSAGES, f"a new message takes index {MESSAGES} (got {after.index})")
    print("all seed flows passed")


if __name__ == "__main__":
    main()
