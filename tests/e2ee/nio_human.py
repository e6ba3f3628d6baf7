"""A human with a real crypto client (matrix-nio with its e2e extra), driven by a test.

Reads one JSON command per line on stdin and answers one JSON line on stdout:
  {"cmd": "login", "homeserver", "user", "password", "device", "store"}
  {"cmd": "send", "room", "body"}                -> {"event_id"}
  {"cmd": "wait_message", "room", "body", "timeout"} -> {"event_id", "sender", "body"}
  {"cmd": "undecrypted", "room"}                  -> {"events": [event ids nio could not decrypt]}
  {"cmd": "send_key_later", "room", "body"}       -> {"event_id", "shared_with": ["user device"]}
      an encrypted message under a new Megolm session whose room key (the to-device
      messages sharing it) is held back until release_keys
  {"cmd": "release_keys"}                         -> {"sent": n}
  {"cmd": "quit"}
Every answer has "ok": true, or "ok": false with "error". Devices are trusted without
verification (ignore_unverified_devices), as a test's human would click through.
"""

import asyncio
import json
import sys
from uuid import uuid4

from nio import Api, AsyncClient, AsyncClientConfig, LoginResponse, MegolmEvent, RoomMessageText
from nio.responses import SyncResponse


class Human:
    def __init__(self):
        self.client = None
        self.seen = []  # (room_id, event) decrypted text messages, in order
        self.undecrypted = []  # (room_id, event_id)
        self.held = []  # to-device bodies sharing a room key, not sent yet

    async def sync(self, timeout_ms=0):
        response = await self.client.sync(timeout=timeout_ms, full_state=False)
        if not isinstance(response, SyncResponse):
            raise RuntimeError(f"sync failed: {response}")
        for room_id, room in response.rooms.join.items():
            for event in room.timeline.events:
                if isinstance(event, RoomMessageText):
                    self.seen.append((room_id, event))
                elif isinstance(event, MegolmEvent):
                    self.undecrypted.append((room_id, event.event_id))
        await self.keys()

    async def keys(self):
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        if self.client.should_query_keys:
            await self.client.keys_query()
        if self.client.should_claim_keys:
            await self.client.keys_claim(self.client.get_users_for_key_claiming())

    async def login(self, c):
        config = AsyncClientConfig(store_sync_tokens=True, encryption_enabled=True)
        self.client = AsyncClient(
            c["homeserver"], c["user"], device_id=c["device"], store_path=c["store"], config=config
        )
        response = await self.client.login(c["password"], device_name=c["device"])
        if not isinstance(response, LoginResponse):
            raise RuntimeError(f"login failed: {response}")
        await self.keys()
        await self.sync()
        return {"device_id": self.client.device_id}

    async def send(self, c):
        await self.sync()
        response = await self.client.room_send(
            c["room"],
            "m.room.message",
            {"msgtype": "m.text", "body": c["body"]},
            ignore_unverified_devices=True,
        )
        event_id = getattr(response, "event_id", None)
        if event_id is None:
            raise RuntimeError(f"send failed: {response}")
        return {"event_id": event_id}

    async def send_key_later(self, c):
        await self.sync()
        room_id = c["room"]
        missing = self.client.get_missing_sessions(room_id)
        if missing:
            await self.client.keys_claim(missing)
        olm = self.client.olm
        olm.create_outbound_group_session(room_id)
        users = list(self.client.rooms[room_id].users.keys())
        shared_with = []
        for sharing_with, to_device in olm.share_group_session_parallel(
            room_id, users, ignore_unverified_devices=True
        ):
            shared_with.extend(f"{user} {device}" for user, device in sharing_with)
            self.held.append(to_device)
        olm.outbound_group_sessions[room_id].shared = True
        message = {"type": "m.room.message", "content": {"msgtype": "m.text", "body": c["body"]}}
        content = olm.group_encrypt(room_id, message)
        method, path, data = Api.room_send(
            self.client.access_token, room_id, "m.room.encrypted", content, uuid4()
        )
        response = await self.client.send(method, path, data)
        answer = await response.json()
        if response.status != 200:
            raise RuntimeError(f"send failed: {response.status} {answer}")
        return {"event_id": answer["event_id"], "shared_with": sorted(shared_with)}

    async def release_keys(self, c):
        sent = 0
        while self.held:
            to_device = self.held.pop(0)
            method, path, data = Api.to_device(
                self.client.access_token, "m.room.encrypted", to_device, uuid4()
            )
            response = await self.client.send(method, path, data)
            if response.status != 200:
                raise RuntimeError(f"to-device send failed: {response.status} {await response.text()}")
            sent += 1
        return {"sent": sent}

    async def wait_message(self, c):
        deadline = asyncio.get_event_loop().time() + c.get("timeout", 30)
        while True:
            for room_id, event in self.seen:
                if room_id == c["room"] and c["body"] in event.body:
                    return {"event_id": event.event_id, "sender": event.sender, "body": event.body}
            left = deadline - asyncio.get_event_loop().time()
            if left <= 0:
                raise RuntimeError(
                    f"no message with {c['body']!r} in {c['room']} within the timeout; "
                    f"undecrypted: {self.undecrypted}"
                )
            await self.sync(timeout_ms=int(min(left, 2) * 1000))

    async def run(self):
        loop = asyncio.get_event_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            c = json.loads(line)
            try:
                if c["cmd"] == "quit":
                    break
                if c["cmd"] == "undecrypted":
                    answer = {"events": [e for r, e in self.undecrypted if r == c["room"]]}
                else:
                    answer = await getattr(self, c["cmd"])(c)
                answer["ok"] = True
            except Exception as e:  # the test shows it
                answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            print(json.dumps(answer), flush=True)
        if self.client is not None:
            await self.client.close()


asyncio.run(Human().run())
