"""English and Italian: the language follows the `lang` cookie (the switch), else the browser's
Accept-Language, else English. A missing Italian text falls back to the English one."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup

LANGUAGES = ("en", "it")
COOKIE = "mlbus_lang"

EN: dict[str, str] = {
    "app": "mlbus console",
    "skip": "Skip to content",
    "nav": "Main",
    "dashboard": "Dashboard",
    "tasks": "Task mappings",
    "machines": "Serving machines",
    "endpoints": "Endpoint mappings",
    "logs_enqueue": "Enqueue logs",
    "logs_ondemand": "On-demand logs",
    "resources": "Resources",
    "notifications": "Notifications",
    "my_requests": "My requests",
    "api_docs": "API docs",
    "logout": "Log out",
    "signed_in_as": "Signed in as",
    "language": "Language",
    "serving_machines": "Serving machines",
    "endpoint_count": "Endpoints",
    "task_count": "Task mappings",
    "machines_online": "Machines online",
    "gpus_online": "GPUs online",
    "per_hour": "Requests per hour, last 24 hours",
    "per_day": "Requests per day, last 30 days",
    "enqueue": "Enqueue",
    "ondemand": "On-demand",
    "success_rate": "Success rate",
    "latency": "Latency (ms)",
    "requests": "Requests",
    "errors": "Errors",
    "top_users": "Top users",
    "top_tasks": "Top tasks",
    "top_endpoints": "Top endpoints",
    "name": "Name",
    "count": "Count",
    "updated": "Updated",
    "search": "Search",
    "showing": "Showing {first} to {last} of {total} results",
    "per_page": "per page",
    "previous": "Previous",
    "next": "Next",
    "new": "New",
    "create": "Create",
    "delete": "Delete",
    "confirm_delete": "Delete this mapping?",
    "view": "View",
    "copy": "Copy",
    "copied": "Copied",
    "task_id": "Task id",
    "clearml_task_id": "ClearML task id",
    "default_queue": "Default queue",
    "allowed_queues": "Allowed queues (comma-separated)",
    "allowed": "Allowed queues",
    "offline": "Offline",
    "machines_h": "Machines",
    "no_gpus": "No GPU readings.",
    "description": "Description",
    "created": "Created",
    "created_by": "Created by",
    "force": "Save even if the queue is unknown",
    "known_queues": "Known queues",
    "warnings": "Warnings",
    "audit": "Audit trail",
    "action": "Action",
    "actor": "Who",
    "when": "When",
    "machine_id": "Machine id",
    "serving_task_id": "Serving task id",
    "base_urls": "Replica base URLs (one per line)",
    "replicas": "Replicas",
    "endpoint": "Endpoint",
    "timeout_s": "Timeout (s)",
    "filters": "Filters",
    "user": "User",
    "status": "Status",
    "since": "Since",
    "until": "Until",
    "apply": "Apply",
    "export_csv": "Export CSV",
    "request_id": "Request id",
    "target": "Task or endpoint",
    "accepted_at": "Accepted",
    "latency_total": "Latency total (ms)",
    "timeline": "Timeline",
    "latency_split": "Latency split (ms)",
    "error": "Error",
    "step": "Step",
    "ms": "ms",
    "none": "Nothing yet.",
    "machines_up": "Machines up",
    "machines_down": "Machines down",
    "gpus_free": "GPUs free",
    "gpus_busy": "GPUs busy",
    "queues": "Queues",
    "queue": "Queue",
    "length": "Length",
    "oldest_wait": "Oldest wait (s)",
    "workers": "Workers",
    "machine": "Machine",
    "online": "Online",
    "gpu": "GPU",
    "utilisation": "Utilisation",
    "memory": "Memory",
    "kind": "Kind",
    "message": "Message",
    "live": "Updated live",
    "forbidden": "You may not see this page.",
    "error_title": "Something went wrong",
    "back": "Back to the start page",
    "signed_out": "You are signed out.",
    "sign_in": "Sign in",
    "welcome": "The web console of mlbus: the cluster, its usage and your requests.",
    "result": "Result",
    "yes": "yes",
    "no": "no",
    "catalog": "Catalog",
    "catalog_intro": "The tasks and model endpoints you may call, by the ids to send.",
    "catalog_tasks": "Tasks you may enqueue",
    "catalog_tasks_how": "Send the task id as {field} to {route}.",
    "catalog_endpoints": "Model endpoints you may call",
    "catalog_endpoints_how": (
        "Send the machine id as {machine} and the endpoint as {endpoint} to {route}."
    ),
    "catalog_no_tasks": "No task is mapped yet: ask an admin to map one.",
    "catalog_no_endpoints": "No model endpoint is mapped yet: ask an admin to map one.",
    "no_description": "(no description)",
    "input_schema": "Input shape",
}

IT: dict[str, str] = {
    "app": "console mlbus",
    "skip": "Vai al contenuto",
    "nav": "Principale",
    "dashboard": "Cruscotto",
    "tasks": "Mappature dei task",
    "machines": "Macchine di serving",
    "endpoints": "Mappature degli endpoint",
    "logs_enqueue": "Log di accodamento",
    "logs_ondemand": "Log on-demand",
    "resources": "Risorse",
    "notifications": "Notifiche",
    "my_requests": "Le mie richieste",
    "api_docs": "Documentazione API",
    "logout": "Esci",
    "signed_in_as": "Accesso come",
    "language": "Lingua",
    "serving_machines": "Macchine di serving",
    "endpoint_count": "Endpoint",
    "task_count": "Mappature dei task",
    "machines_online": "Macchine attive",
    "gpus_online": "GPU attive",
    "per_hour": "Richieste per ora, ultime 24 ore",
    "per_day": "Richieste per giorno, ultimi 30 giorni",
    "enqueue": "Accodamento",
    "ondemand": "On-demand",
    "success_rate": "Tasso di successo",
    "latency": "Latenza (ms)",
    "requests": "Richieste",
    "errors": "Errori",
    "top_users": "Utenti più attivi",
    "top_tasks": "Task più usati",
    "top_endpoints": "Endpoint più usati",
    "name": "Nome",
    "count": "Numero",
    "updated": "Aggiornato",
    "search": "Cerca",
    "showing": "Mostrati da {first} a {last} di {total} risultati",
    "per_page": "per pagina",
    "previous": "Precedente",
    "next": "Successiva",
    "new": "Nuovo",
    "create": "Crea",
    "delete": "Elimina",
    "confirm_delete": "Eliminare questa mappatura?",
    "view": "Vedi",
    "copy": "Copia",
    "copied": "Copiato",
    "task_id": "Id del task",
    "clearml_task_id": "Id del task ClearML",
    "default_queue": "Coda predefinita",
    "allowed_queues": "Code ammesse (separate da virgole)",
    "allowed": "Code ammesse",
    "offline": "Non attiva",
    "machines_h": "Macchine",
    "no_gpus": "Nessuna lettura delle GPU.",
    "description": "Descrizione",
    "created": "Creato",
    "created_by": "Creato da",
    "force": "Salva anche se la coda è sconosciuta",
    "known_queues": "Code conosciute",
    "warnings": "Avvisi",
    "audit": "Storico delle modifiche",
    "action": "Azione",
    "actor": "Chi",
    "when": "Quando",
    "machine_id": "Id della macchina",
    "serving_task_id": "Id del task di serving",
    "base_urls": "URL delle repliche (uno per riga)",
    "replicas": "Repliche",
    "endpoint": "Endpoint",
    "timeout_s": "Timeout (s)",
    "filters": "Filtri",
    "user": "Utente",
    "status": "Stato",
    "since": "Dal",
    "until": "Al",
    "apply": "Applica",
    "export_csv": "Esporta CSV",
    "request_id": "Id della richiesta",
    "target": "Task o endpoint",
    "accepted_at": "Accettata",
    "latency_total": "Latenza totale (ms)",
    "timeline": "Cronologia",
    "latency_split": "Ripartizione della latenza (ms)",
    "error": "Errore",
    "step": "Passo",
    "none": "Ancora niente.",
    "machines_up": "Macchine attive",
    "machines_down": "Macchine non attive",
    "gpus_free": "GPU libere",
    "gpus_busy": "GPU occupate",
    "queues": "Code",
    "queue": "Coda",
    "length": "Lunghezza",
    "oldest_wait": "Attesa più lunga (s)",
    "workers": "Worker",
    "machine": "Macchina",
    "online": "Attiva",
    "utilisation": "Utilizzo",
    "memory": "Memoria",
    "kind": "Tipo",
    "message": "Messaggio",
    "live": "Aggiornato in tempo reale",
    "forbidden": "Non puoi vedere questa pagina.",
    "error_title": "Qualcosa è andato storto",
    "back": "Torna alla pagina iniziale",
    "signed_out": "Sei uscito.",
    "sign_in": "Accedi",
    "welcome": "La console web di mlbus: il cluster, il suo uso e le tue richieste.",
    "result": "Risultato",
    "yes": "sì",
    "no": "no",
    "catalog": "Catalogo",
    "catalog_intro": "I task e gli endpoint dei modelli che puoi chiamare, con gli id da inviare.",
    "catalog_tasks": "Task che puoi accodare",
    "catalog_tasks_how": "Invia l'id del task come {field} a {route}.",
    "catalog_endpoints": "Endpoint dei modelli che puoi chiamare",
    "catalog_endpoints_how": (
        "Invia l'id della macchina come {machine} e l'endpoint come {endpoint} a {route}."
    ),
    "catalog_no_tasks": (
        "Nessun task è ancora mappato: chiedi a un amministratore di mapparne uno."
    ),
    "catalog_no_endpoints": (
        "Nessun endpoint è ancora mappato: chiedi a un amministratore di mapparne uno."
    ),
    "no_description": "(nessuna descrizione)",
    "input_schema": "Forma dell'input",
}

#: The API's states, as people read them (English shows the API's own words; tests and scripts
#: compare those).
STATES: dict[str, dict[str, str]] = {
    "it": {
        "accepted": "accettata",
        "cloned": "clonata",
        "queued": "in coda",
        "running": "in esecuzione",
        "completed": "completata",
        "failed": "fallita",
        "stopped": "fermata",
        "answered": "risposta",
        "error": "errore",
        "timeout": "scaduta",
        "rejected": "rifiutata",
        "firing": "in corso",
        "resolved": "risolta",
        "event": "evento",
        "warning": "avviso",
        "critical": "critica",
    }
}

MESSAGES = {"en": EN, "it": IT}


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the switch's cookie, else the best of Accept-Language, else 'en'."""
    if cookie in LANGUAGES:
        return str(cookie)
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES and weight > 0:
            ranked.append((-weight, index, primary))
    return min(ranked)[2] if ranked else "en"


def state_label(lang: str) -> Callable[[object], str]:
    """`st(state)` for templates: a request's or notification's state in the page's language."""
    table = STATES.get(lang, {})

    def st(state: object) -> str:
        return table.get(str(state), str(state or ""))

    return st


def when(value: object, decimals: int = 0) -> Markup:
    """An API timestamp (ISO 8601, UTC) as people read it: `2026-12-03 10:53:54 UTC` in a
    <time> element that keeps the exact value; `decimals` keeps fractions of a second."""
    text = str(value or "")
    if len(text) < 19:
        return Markup("<time>{0}</time>").format(text)
    shown = text[:10] + " " + text[11:19]
    if decimals and text[19:20] == ".":
        shown += text[19 : 20 + decimals]
    if text.endswith(("Z", "+00:00")):
        shown += " UTC"
    return Markup('<time datetime="{0}">{1}</time>').format(text, shown)


def translator(lang: str) -> Callable[..., str]:
    """`t(key, **fields)` for templates."""
    table = MESSAGES.get(lang, EN)

    def t(key: str, **fields: object) -> str:
        text = table.get(key) or EN.get(key, key)
        return text.format(**fields) if fields else text

    return t
