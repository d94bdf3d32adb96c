"""The sGPO Studio dashboard: Streamlit pages over the sgpo library (`sgpo dashboard` serves it).

app.py checks the session's access (access.py: the server's token, when it asks one) before anything else,
then builds the navigation; views/ hold one short script per step of the data flow (data -> audit -> plan ->
train -> rollouts -> queries -> compare). state.py opens the store and caches what the library returns
(sgpo.profiles, sgpo.plans, sgpo.runs, sgpo.rollouts, sgpo.compare); forms.py builds the configs and command
lines the forms show; jobs.py lists the background profiles as the store records them (the library's detached
workers); analysis.py, curves.py, rollout_tables.py and the figure modules are plain functions over frames
that tests call directly.
"""
