"""Sign-in throttling that stops guessing without letting an attacker lock anyone out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.auth import services
from portal.core.models import LoginAttempt, utcnow
from tests.conftest import PASSWORD

ATTACKER = "203.0.113.9"
OWNER = "198.51.100.7"


@pytest.fixture(autouse=True)
def _csrf_off(app):
    app.config["WTF_CSRF_ENABLED"] = False


def sign_in(client, email, password, address, **headers):
    return client.post("/auth/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def test_an_attacker_hammering_an_account_does_not_lock_its_owner_out(app, make_user):
    user = make_user("partner", partner=None)
    owner, attacker = app.test_client(), app.test_client()
    assert sign_in(owner, user.email, PASSWORD, OWNER).status_code == 303  # the usual place
    owner.post("/auth/logout")
    answers = [sign_in(attacker, user.email, f"guess {n}", ATTACKER).status_code
               for n in range(12)]
    assert answers[:5] == [200] * 5  # "wrong email or password"
    assert set(answers[5:]) == {429}  # then waits
    assert sign_in(owner, user.email, PASSWORD, OWNER).status_code == 303


def test_the_owner_still_gets_in_from_their_usual_address_during_a_spread_out_attack(
        app, client, make_user, session):
    user = make_user("manager")
    assert sign_in(client, user.email, PASSWORD, OWNER).status_code == 303
    client.post("/auth/logout")
    now = utcnow()
    # Guesses from a hundred addresses, more than any per-account limit lets through.
    session.add_all(LoginAttempt(email=user.email, address=f"192.0.2.{n}", success=False,
                                 at=now - timedelta(seconds=n)) for n in range(100))
    session.commit()
    assert sign_in(client, user.email, PASSWORD, "192.0.2.200").status_code == 429
    assert sign_in(client, user.email, PASSWORD, OWNER).status_code == 303


def test_repeated_failures_wait_longer_each_time_and_the_answer_says_when(app, client,
                                                                          make_user, session):
    user = make_user("manager")
    start = utcnow()
    free = app.config["LOGIN_FREE_FAILURES"]
    for _ in range(free):
        with pytest.raises(services.SignInRefused) as wrong:
            services.authenticate(session, user.email, "wrong", OWNER, now=start)
        assert not wrong.value.throttled
    waits = []
    at = start
    for _ in range(3):
        with pytest.raises(services.SignInRefused) as refused:
            services.authenticate(session, user.email, PASSWORD, OWNER, now=at)
        assert refused.value.throttled
        waits.append(refused.value.retry_at - at)
        at = refused.value.retry_at  # the time it named: a try is let through
        with pytest.raises(services.SignInRefused):
            services.authenticate(session, user.email, "wrong again", OWNER, now=at)
    assert waits[0] > timedelta(0)
    assert waits[1] == 2 * waits[0] and waits[2] == 2 * waits[1]
    assert services.authenticate(session, user.email, PASSWORD, OWNER,
                                 now=at + 4 * waits[2]) == user


    typist = make_user("manager")
    for _ in range(free):
        assert sign_in(client, typist.email, "typo", OWNER).status_code == 200
    page = sign_in(client, typist.email, PASSWORD, OWNER)
    assert page.status_code == 429
    seconds = int(page.headers["Retry-After"])
    assert 0 < seconds <= app.config["LOGIN_FIRST_DELAY_SECONDS"]
    assert f"Try again in {seconds} seconds" in page.get_data(as_text=True)


def test_one_address_trying_many_accounts_is_stopped_but_its_own_users_get_in(
        app, client, make_user):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 4
    regular, victim = make_user("manager"), make_user("manager")
    office = "192.0.2.50"
    assert sign_in(client, regular.email, PASSWORD, office).status_code == 303
    client.post("/auth/logout")
    for n in range(4):
        sign_in(client, f"guess{n}@portal.test", "x", office)
    refused = sign_in(client, victim.email, PASSWORD, office)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert sign_in(client, victim.email, PASSWORD, OWNER).status_code == 303
    client.post("/auth/logout")
    # Someone who signs in from there as a rule is not stopped by the spraying.
    assert sign_in(client, regular.email, PASSWORD, office).status_code == 303


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(app, make_user):
    user = make_user("manager")
    balancer = "10.0.0.1"  # every request arrives from the load balancer
    attacker, owner = app.test_client(), app.test_client()

    # Not trusted (the default): a made-up X-Forwarded-For changes nothing.
    assert app.config["TRUSTED_PROXIES"] == 0
    for n in range(8):
        sign_in(attacker, user.email, "guess", ATTACKER, **{"X-Forwarded-For": f"192.0.2.{n}"})
    assert sign_in(attacker, user.email, PASSWORD, ATTACKER,
                   **{"X-Forwarded-For": "192.0.2.99"}).status_code == 429

    # One trusted hop: the balancer's X-Forwarded-For names each client.
    app.config["TRUSTED_PROXIES"] = 1
    for _ in range(8):
        sign_in(attacker, user.email, "guess", balancer, **{"X-Forwarded-For": "192.0.2.77"})
    assert sign_in(owner, user.email, PASSWORD, balancer,
                   **{"X-Forwarded-For": OWNER}).status_code == 303


def test_the_token_endpoint_waits_the_same_way_with_retry_after(app, client, make_user):
    user = make_user("manager")

    def ask(password, address):
        return client.post("/api/v1/tokens", json={"email": user.email, "password": password},
                           environ_base={"REMOTE_ADDR": address})

    answers = [ask("nope", ATTACKER) for _ in range(8)]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    refused = answers[-1]
    assert refused.status_code == 429
    assert refused.json["error"] == "throttled"
    assert int(refused.headers["Retry-After"]) > 0
    assert ask(PASSWORD, OWNER).status_code == 201  # the owner, elsewhere, gets a token
