// Home page: pick a room (and a name), every demo link follows it.
const form = document.getElementById("room-form");
const roomInput = document.getElementById("room");
const nameInput = document.getElementById("name");
const health = document.getElementById("health");

const url = new URL(location.href);
roomInput.value = url.searchParams.get("room") ?? `room-${Math.random().toString(36).slice(2, 8)}`;
try {
  nameInput.value = localStorage.getItem("rtc-demo-name") ?? "";
} catch {
  /* private mode */
}

function link(page) {
  const params = new URLSearchParams({ room: roomInput.value.trim() || "lobby" });
  return `${page}?${params}`;
}

function update() {
  for (const a of document.querySelectorAll("a[data-demo]")) a.href = link(a.dataset.demo);
  try {
    if (nameInput.value.trim()) localStorage.setItem("rtc-demo-name", nameInput.value.trim().slice(0, 40));
  } catch {
    /* private mode */
  }
}
roomInput.addEventListener("input", update);
nameInput.addEventListener("input", update);
update();

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!form.reportValidity()) return;
  update();
  location.href = link("/call.html");
});

fetch("/healthz")
  .then((r) => r.json())
  .then((body) => {
    const ok = body.status === "ok";
    health.textContent = ok ? "Server ready" : `Server: ${body.reason ?? body.status}`;
    health.className = `badge ${ok ? "ok" : "bad"}`;
  })
  .catch(() => {
    health.textContent = "Server unreachable";
    health.className = "badge bad";
  });
