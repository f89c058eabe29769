// Chat demo: room messages over the Peer, with the roster beside them.
import { chatPanel, initHeader, nameFromUrl, roomFromUrl, roster, startPeer } from "./common.js";

const room = await roomFromUrl();
const name = nameFromUrl();
initHeader(room);

const peer = await startPeer(room, name);
roster(peer, document.getElementById("roster"), { selfName: name });
const input = document.getElementById("chat-input");
const form = document.getElementById("chat-form");
chatPanel(peer, { log: document.getElementById("chat-log"), form, input, selfName: name });
for (const node of form.elements) node.disabled = false;
input.focus();
document.body.dataset.ready = "true";
